"""The official ai-security-guard (built from Higress's source) on the embedded runtime, as its README
describes: the streamed answer of an LLM is held, checked by the moderation service in pieces of
`bufferLimit` characters, and the checked chunks are injected back into the response from the
moderation call's callback (proxy_inject_encoded_data_to_filter_chain, emulated by hlocal); a risky
answer is replaced by the deny message as an OpenAI stream.

The moderation service (Aliyun content security, `serviceName` + `servicePort` -> FQDN cluster
`outbound|443||safecheck.dns`) is an hlocal mock answering the API's JSON; the LLM is the mock backend
answering server-sent events.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from support import Project

pytestmark = pytest.mark.slow

WORDS = ["The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog."]
EVENTS = [{"data": {"id": "c1", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": word}}]}} for word in WORDS] + ["[DONE]"]
DENY = "This answer was withheld"


def _guard(module_projects, wasm, name: str, risk: str, buffer_limit: int) -> Project:
    moderation = {"Code": 200, "Message": "OK", "RequestId": "req-1",
                  "Data": {"RiskLevel": risk, "Result": [{"Label": "none" if risk == "none" else "violence"}]}}
    project = module_projects(
        {"gateway": {"port": 0, "wasm_log_level": "debug"},
         "plugins": [{"name": "guard", "wasm": "ai-security-guard.wasm",
                      "config": {"serviceName": "safecheck.dns", "servicePort": 443,
                                 "serviceHost": "green-cip.cn-shanghai.aliyuncs.com",
                                 "accessKey": "ak", "secretKey": "sk", "action": "TextModerationPlus",
                                 "checkResponse": True, "bufferLimit": buffer_limit, "denyMessage": DENY}}],
         "services": [{"name": "safecheck", "kind": "fqdn", "host": "safecheck.dns", "port": 443,
                       "mock": {"stubs": [{"match": {"path_prefix": "/"},
                                           "respond": {"status": 200, "json": moderation}}]}}],
         "backend": {"stubs": [{"match": {"path": "/v1/chat/completions"},
                                "respond": {"events": EVENTS, "interval_ms": 20}}]}},
        files={"ai-security-guard.wasm": wasm}, name=name, runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _chat(project: Project) -> tuple[int, str, str]:
    state = project.state()
    assert state is not None
    conn = http.client.HTTPConnection("127.0.0.1", state["gateway_port"], timeout=30)
    try:
        body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "tell me"}]})
        conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read().decode()
    finally:
        conn.close()


def _contents(stream: str) -> list[str]:
    """The delta contents of an OpenAI event stream, in order."""
    out = []
    for line in stream.splitlines():
        line = line.strip()
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            choice = json.loads(line[5:])["choices"][0]
            out.append(choice.get("delta", {}).get("content", ""))
    return out


def _moderation_calls(project: Project) -> list[dict[str, Any]]:
    from higress_local.mock.client import MockClient

    state = project.state()
    assert state is not None
    service = state["services"]["safecheck"]
    return MockClient(f"http://127.0.0.1:{service['control_port']}", token=state["control_token"]).journal()


@pytest.fixture(scope="module")
def guard_wasm(higress_plugin_wasm):
    return higress_plugin_wasm("extensions/ai-security-guard")


def test_safe_answer_is_checked_then_injected_whole(module_projects, guard_wasm) -> None:
    project = _guard(module_projects, guard_wasm, "guardpass", "none", 1000)
    status, content_type, stream = _chat(project)
    assert status == 200 and "text/event-stream" in content_type
    assert "".join(_contents(stream)) == "".join(WORDS)
    assert stream.rstrip().endswith("data: [DONE]")
    checked = [call for call in _moderation_calls(project) if call["method"] == "POST"]
    assert len(checked) == 1, "one check for the whole short answer (bufferLimit 1000)"
    assert checked[0]["query"]["Service"] == ["llm_response_moderation"]
    form = parse_qs(checked[0]["body"])
    assert json.loads(form["ServiceParameters"][0])["content"] == "".join(WORDS)


def test_answer_checked_in_pieces_arrives_complete_and_in_order(module_projects, guard_wasm) -> None:
    project = _guard(module_projects, guard_wasm, "guardpieces", "none", 10)
    status, _, stream = _chat(project)
    assert status == 200
    assert "".join(_contents(stream)) == "".join(WORDS)
    checked = [call for call in _moderation_calls(project) if call["method"] == "POST"]
    assert len(checked) >= 2, "a 10-character bufferLimit checks the answer in several pieces"


def test_risky_answer_is_replaced_by_the_deny_stream(module_projects, guard_wasm) -> None:
    project = _guard(module_projects, guard_wasm, "guardblock", "high", 1000)
    status, _, stream = _chat(project)
    assert status == 200
    contents = _contents(stream)
    assert "fox" not in "".join(contents)
    assert any(DENY in piece for piece in contents), stream
    assert stream.rstrip().endswith("data: [DONE]")
