"""The inspector's pure parts: tap files, the ring, the diff, the views, replay's request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from higress_local.errors import ConfigError
from higress_local.inspect import diff
from higress_local.inspect.sources import parse_plugin_line
from higress_local.inspect.store import Store
from higress_local.inspect.tapfile import Trace, fold
from higress_local.inspect.tapstream import SegmentDecoder
from higress_local.inspect.view import format_list, format_record, replay_request


def _segment(kind: str, value) -> str:
    return json.dumps({"http_streamed_trace_segment": {"trace_id": "42", kind: value}}, indent=1)


def _headers(*pairs) -> dict:
    return {"headers": [{"key": k, "value": v, "raw_value": ""} for k, v in pairs]}


def test_streamed_segments_fold_into_messages_and_caps_bodies() -> None:
    stream = "\n".join([
        _segment("request_headers", _headers((":method", "POST"), (":path", "/p"), ("x-a", "1"))),
        _segment("request_body_chunk", {"as_string": "abcdef", "truncated": False}),
        _segment("request_body_chunk", {"as_string": "ghij", "truncated": False}),
        _segment("response_headers", _headers((":status", "201"),)),
    ]) + '\n{"http_streamed_trace_segment": {"trace_id": "42", "respo'  # the rest not sent yet
    trace = Trace(stream="42")
    for item in SegmentDecoder().feed(stream.encode()):
        fold(trace, item, body_cap=8)
    assert trace.request.headers == [[":method", "POST"], [":path", "/p"], ["x-a", "1"]]
    assert trace.request.body == "abcdefgh" and trace.request.body_truncated
    assert trace.response.header(":status") == "201" and trace.response.body == ""


def test_the_ring_keeps_the_newest_n(tmp_path: Path) -> None:
    store = Store(tmp_path / "ring", ring=3)
    ids = [store.add({"path": f"/{i}"}) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5] and store.ids() == [3, 4, 5]
    assert [r["path"] for r in store.recent()] == ["/4", "/3", "/2"]  # newest first
    assert [r["id"] for r in store.recent(limit=1)] == [5] and [r["id"] for r in store.recent(after=4)] == [5]
    assert store.get(1) is None and store.get(5)["path"] == "/4"
    assert Store(tmp_path / "ring", ring=3).add({}) == 6  # ids go on after a restart


def _record(**overrides) -> dict:
    record = {
        "id": 7, "method": "POST", "path": "/post", "status": 403, "request_id": "r1", "time": 0,
        "client_request": {"headers": [[":path", "/post"], ["x-remove", "1"], ["x-same", "s"], ["x-replace", "a"],
                                       ["x-hlocal-request-id", "t"]],
                           "body": json.dumps({"a1": 1, "a3": "t3", "n": {"k": 1}}), "body_truncated": False},
        "upstream_request": {"headers": [[":path", "/post"], ["x-same", "s"], ["x-replace", "b"], ["x-new", "n"],
                                         ["x-hlocal-request-id", "t"]],
                             "body": json.dumps({"a3": "t3-new", "a2": True, "n": {"k": 2}}), "body_truncated": False},
        "upstream_response": {"headers": [[":status", "200"], ["x-up", "1"]], "body": "ok", "body_truncated": False},
        "client_response": {"headers": [[":status", "403"], ["x-up", "1"], ["x-deny", "yes"]], "body": "denied",
                            "body_truncated": False},
        "plugin_logs": [{"plugin": "p", "text": "denied", "matched_by": "request id"}],
        "service_calls": {"auth": [{"method": "GET", "path": "/check", "status": 200, "matched_by": "time"}]},
        "timings": {"duration_ms": 3.0}, "plugins": ["p"],
    }
    record.update(overrides)
    return record


def test_the_diff_names_header_and_json_key_changes_and_the_status() -> None:
    result = diff.analyse(_record())
    assert result["request_headers"].added == [("x-new", "n")]
    assert result["request_headers"].removed == [("x-remove", "1")]
    assert result["request_headers"].changed == [("x-replace", "a", "b")]
    body = result["request_body"]
    assert body.kind == "json" and body.added == [("a2", True)] and body.removed == [("a1", 1)]
    assert body.changed == [("a3", "t3", "t3-new"), ("n.k", 1, 2)]
    assert result["response_body"].kind == "text" and result["status"] == (200, 403)
    summary = diff.summary(_record())
    assert summary == ("req +x-new -x-remove ~x-replace; resp +x-deny; req body +a2 -a1 ~a3 ~n.k; "
                       "resp body changed (2 → 6 bytes); status 200 → 403")
    assert "hlocal" not in summary  # hlocal's own tag is never shown as a change


def test_a_local_reply_says_the_upstream_was_not_called() -> None:
    record = _record(upstream_request=None, upstream_response=None)
    assert diff.summary(record).startswith("answered by the gateway (403), upstream not called")
    text = "\n".join(format_record(record))
    assert "(never: the gateway answered without calling the upstream)" in text


def test_the_views_mark_changes_and_list_logs_and_calls() -> None:
    text = "\n".join(format_record(_record()))
    assert "  - x-remove: 1" in text and "  + x-new: n" in text and "  ~ x-replace: b" in text
    assert "  + x-deny: yes" in text and "x-hlocal-request-id" not in text
    assert "  ~ a3: \"t3\" → \"t3-new\"" in text
    assert "p: denied   [request id]" in text and "service auth received: GET /check -> 200   [time]" in text
    header, row = format_list([_record()])
    assert "POST" in row and "/post" in row and "403" in row and "status 200 → 403" in row
    assert header.split() == ["ID", "TIME", "METHOD", "PATH", "STATUS", "PLUGINS", "CHANGES"]
    for title, value in (("METHOD", "POST"), ("PATH", "/post"), ("PLUGINS", "p   "), ("CHANGES", "req +x-new")):  # each heads its column
        assert header.index(title) == row.index(value), (header, row)
    assert header.index("STATUS") + len("STATUS") == row.index("403") + len("403")  # right-aligned
    assert format_list([]) == ["no requests captured yet (send one through the gateway)"]  # no lone header


def test_replay_sends_the_clients_request_without_what_the_gateway_added() -> None:
    record = _record(client_request={"headers": [[":method", "PUT"], [":path", "/x?y=1"], [":authority", "h.local"],
                                                 ["x-a", "1"], ["x-request-id", "r"], ["x-forwarded-proto", "http"],
                                                 ["content-length", "2"]], "body": "hi", "body_truncated": False})
    assert replay_request(record) == ("PUT", "/x?y=1", [("host", "h.local"), ("x-a", "1")], b"hi")
    record["client_request"]["body_truncated"] = True
    with pytest.raises(ConfigError, match="cut at capture"):
        replay_request(record)


def test_wasm_go_lines_carry_the_request_id_and_call_starts() -> None:
    line = ("[2026-12-02 09:20:18.100][7][info][wasm] [context.cc:1] wasm log inspectme inspectme: [inspectme] [nil] "
            "[5e73-rid] http call start, id: efbf, cluster: outbound|8080||auth.internal, method: GET, "
            "url: /check/get/one?x=1, headers: [], body: , timeout: 2000")
    parsed = parse_plugin_line(line)
    assert parsed is not None and parsed.plugin == "inspectme" and parsed.request_id == "5e73-rid"
    assert parsed.call == ("outbound|8080||auth.internal", "GET", "/check/get/one")
    raw = parse_plugin_line("[2026-12-02 09:20:18.100][7][info][wasm] [c.cc:1] wasm log logger: logger: GET /")
    assert raw is not None and raw.request_id is None and raw.text == "logger: GET /"
    assert parse_plugin_line("[2026-12-02 09:20:18.100][7][info][wasm] [c] wasm log hlocal.bridge: x") is None


def test_a_record_is_found_by_the_request_id_hlocals_clients_send(tmp_path: Path) -> None:
    from higress_local.inspect.view import record_for_request, store_dir

    assert record_for_request(tmp_path, "abc", timeout=0.2) is None  # capture off: no store
    store = Store(store_dir(tmp_path))
    store.add(_record(client_request={"headers": [[":path", "/a"], ["x-hlocal-request-id", "abc"]], "body": ""}))
    store.add(_record(path="/other"))
    found = record_for_request(tmp_path, "abc", timeout=0.2)
    assert found is not None and found["id"] == 1
    assert record_for_request(tmp_path, "nope", timeout=0.2) is None


def test_the_access_log_counts_only_new_lines_and_parses_a_line_when_asked(tmp_path: Path) -> None:
    from higress_local.inspect.sources import AccessLog, Journals

    log = tmp_path / "access.log"
    log.write_text('{"request_id":"old","start_time":"2026-12-07T10:00:00.000Z"}\n')
    access = AccessLog(log)
    with log.open("a") as handle:
        handle.write('{"request_id": "r1", "start_time": "2026-12-07T10:00:01.250Z", "duration": "3"}\n')
        handle.write('[2026-12-07T10:00:01.300Z] "GET / HTTP/1.1" 200 - text line\n')  # a custom text format
        handle.write('{"request_id":"-","method":"GET","start_time":"2026-12-07T10:00:02.000Z"}\n')
        handle.write('{"request_id":"r2","ai_log":"{\\"request_id\\":\\"inner\\"}"}\n')
        handle.write('{"request_id":"r3"')  # not complete yet: waits for its newline
    assert access.poll() == ["r1", None, "r2"]  # the line written before the collector started is not counted
    assert access.by_request_id("old") is not None and access.by_request_id("inner") is None
    entry = access.by_request_id("r1")
    assert entry["duration"] == "3" and entry["_start"] == 1796637601.25
    assert [e["method"] for e in access.without_id] == ["GET"]
    with log.open("a") as handle:
        handle.write("}\n")
    assert access.poll() == ["r3"]


class _Journal:
    def __init__(self, entries: list[dict]) -> None:
        self.entries = entries

    def journal(self, since: int = 0, header_suffix: tuple[str, str] | None = None) -> list[dict]:
        """As the mock's control port answers (test_the_mock_journal_filters_by_a_header_suffix)."""
        out = [dict(e) for e in self.entries if e["seq"] > since]
        if header_suffix is not None:
            name, end = header_suffix
            out = [e for e in out if any(v.endswith(end) for v in (e.get("headers") or {}).get(name, []))]
        return out


def test_the_mock_journal_filters_by_a_header_suffix() -> None:
    from higress_local.mock.journal import Journal

    journal = Journal()
    for rid in ("a0", "b1", "c0"):
        journal.record({"method": "GET", "path": "/", "headers": {"x-request-id": [rid]}, "body": ""}, None, 200, 1.0)
    journal.record({"method": "GET", "path": "/", "headers": {}, "body": ""}, None, 200, 1.0)
    assert [e["headers"]["x-request-id"] for e in journal.entries(suffixes=[("X-Request-Id", "0")])] == [["a0"], ["c0"]]
    assert [e["seq"] for e in journal.entries(since=1, suffixes=[("x-request-id", "0")])] == [3]


def test_journal_windows_merge_the_mocks_in_time_order_and_can_leave_the_backend_out() -> None:
    from higress_local.inspect.sources import Journals

    backend = _Journal([{"seq": i, "time": 10 + i / 10, "headers": {"x-request-id": [f"b{i}"]}} for i in range(1, 40)])
    service = _Journal([{"seq": 1, "time": 10.25}, {"seq": 2, "time": 10.95}])
    journals = Journals({"backend": backend, "svc": service})
    journals.poll()
    window = journals.between(10.2, 10.4)
    assert [(name, e["seq"]) for name, e in window] == [("backend", 2), ("svc", 1), ("backend", 3), ("backend", 4)]
    assert [name for name, _ in journals.between(10.2, 11.0, skip="backend")] == ["svc", "svc"]
    assert journals.by_request["b3"][0][1]["seq"] == 3
    journals.poll()  # nothing new: nothing doubled
    assert len(journals.between(0, 100)) == 41
    sampled = Journals({"backend": backend, "svc": service})
    sampled.poll(sample=("backend", "0"))  # the backend's entries of sampled request ids only
    assert [e["seq"] for _, e in sampled.between(0, 100, skip="svc")] == [10, 20, 30]
    assert len(sampled.between(0, 100, skip="backend")) == 2
