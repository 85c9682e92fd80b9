"""The typed, versioned stack state: round trip, and every way a file can be wrong is CorruptState."""

from __future__ import annotations

import json
import os

import pytest

from higress_local.errors import CorruptState, UnsafeStatePath
from higress_local.render.envoy import Layout
from higress_local.state import (STATE_VERSION, ComponentState, PluginState, RestartKey, ServiceState,
                                 StackState)


def sample() -> StackState:
    return StackState(
        name="demo", runtime="native", flavor="envoy", config_file="/p/hlocal.yaml", started=1.5,
        gateway_port=10000, admin_port=9901, backend_port=8080, control_port=8081, ready=True,
        components={"gateway": ComponentState(name="gateway", pid=42, start_ticks=7, ports={"http": 10000})},
        plugins=[PluginState(name="p", source="/p/p.wasm", sha256="a" * 64, abi="0.2.100", served="/s",
                             served_sha256="b" * 64, adaptations=["rename"], source_stat=[1, 2])],
        services={"cache": ServiceState(name="cache", kind="redis", how="redis", component="svc-cache",
                                        cluster="outbound|6379||cache.dns", address="127.0.0.1", port=6379)},
        layout=Layout(flavor="envoy", listen_address="127.0.0.1", listen_port=10000, admin_address="127.0.0.1",
                      admin_port=9901, backend_address="127.0.0.1", backend_port=8080, ecds_dir="/e",
                      xds_dir="/x", modules={"p": "/m/p.wasm"}, services={"cache": ["127.0.0.1", 6379]}),
        restart_key=RestartKey(gateway={"port": 0}, chain=["p"], services=[], backend_image=None),
        control_token="secret",
    )


def test_a_saved_state_loads_back_equal(tmp_path):
    state = sample()
    state.save(tmp_path)
    assert StackState.load(tmp_path) == state
    assert StackState.load(tmp_path).services["cache"].control_url is None


def test_the_state_file_is_readable_by_the_user_only(tmp_path):
    sample().save(tmp_path)
    assert os.stat(tmp_path / "state.json").st_mode & 0o777 == 0o600


def test_no_state_file_is_none(tmp_path):
    assert StackState.load(tmp_path) is None


def _doc() -> dict:
    return json.loads(sample().to_json())


@pytest.mark.parametrize("text, expected", [
    ('{"name": "demo", "runt', "not valid JSON"),
    ("{}", "another hlocal version"),
    ("[]", "holds list"),
    ("null", "holds NoneType"),
    (json.dumps({**_doc(), "version": 1}), "state version 1"),
    (json.dumps({**_doc(), "gateway_port": "10000"}), "gateway_port: '10000' is not a int"),
    (json.dumps({**_doc(), "gateway_port": True}), "gateway_port: True is not a int"),
    (json.dumps({**_doc(), "surprise": 1}), "unknown field 'surprise'"),
    (json.dumps({k: v for k, v in _doc().items() if k != "admin_port"}), "missing field 'admin_port'"),
    (json.dumps({**_doc(), "components": {"gateway": {"name": "gateway", "pid": "x"}}}), "components.gateway: pid"),
    (json.dumps({**_doc(), "plugins": [{"name": "p"}]}), "plugins[0]: missing field"),
    (json.dumps({**_doc(), "layout": {"flavor": "envoy"}}), "layout: missing field"),
    (json.dumps({**_doc(), "services": {"cache": 3}}), "services.cache: expected an object"),
])
def test_a_wrong_state_file_is_corrupt_state_naming_what_is_wrong(tmp_path, text, expected):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(CorruptState) as caught:
        StackState.load(tmp_path)
    assert expected in caught.value.message
    assert "hlocal down" in caught.value.hint


def test_a_state_file_that_is_not_utf8_is_corrupt(tmp_path):
    (tmp_path / "state.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(CorruptState):
        StackState.load(tmp_path)


def test_a_linked_state_file_is_refused_not_followed(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(sample().to_json())
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").symlink_to(target)
    with pytest.raises(UnsafeStatePath):
        StackState.load(tmp_path / "state")


def test_load_or_none_treats_a_corrupt_state_as_none(tmp_path):
    (tmp_path / "state.json").write_text("{")
    assert StackState.load_or_none(tmp_path) is None
