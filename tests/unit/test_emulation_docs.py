"""Every emulation hlocal applies (and every refusal) is listed by `check --json` and in the README."""

from __future__ import annotations

from pathlib import Path

from higress_local.wasm.adapt.catalog import HOST_FUNCTION_EMULATIONS
from higress_local.render.fidelity import BEHAVIOUR_EMULATIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_emulation_entry_is_in_the_readme_bridging_table():
    bridging = README[README.index("## Stock Envoy vs Higress plugins"):README.index("## hlocal.yaml reference")]
    keys = [e.key for e in BEHAVIOUR_EMULATIONS]
    host_functions = {"redis": "proxy_redis_call", "get_log_level": "get_log_level",
                      "inject_encoded_data": "proxy_inject_encoded_data_to_filter_chain",
                      "upstream_hosts": "proxy_get_upstream_hosts"}
    assert {e.key for e in HOST_FUNCTION_EMULATIONS} == set(host_functions)
    for key in keys:
        assert f"`{key}`" in bridging, key
    for name in host_functions.values():
        assert name in bridging, name


def test_every_entry_says_what_hlocal_does_or_why_it_refuses():
    for entry in [*HOST_FUNCTION_EMULATIONS, *BEHAVIOUR_EMULATIONS]:
        assert entry.higress
        assert entry.differs if entry.refused else entry.hlocal, entry.key


def test_check_json_lists_the_behaviour_emulations_on_stock_envoy_only(tmp_path):
    import json

    from click.testing import CliRunner
    from .wasm_builders import plugin

    from higress_local.cli.main import main

    (tmp_path / "p.wasm").write_bytes(plugin(abi="0_2_1"))
    (tmp_path / "hlocal.yaml").write_text("name: emu\nruntime: native\nplugins:\n  - {name: p, wasm: p.wasm}\n")
    envoy = CliRunner().invoke(main, ["-f", str(tmp_path), "check", "--json"])
    doc = json.loads(envoy.output)
    assert {e["key"] for e in doc["emulations"]} == {e.key for e in BEHAVIOUR_EMULATIONS}
    assert any(f["filter"] == "hlocal.bridge.after.p" for f in doc["chain"])
    (tmp_path / "hlocal.yaml").write_text("name: emu\nruntime: docker\ngateway: {flavor: higress}\n"
                                          "plugins:\n  - {name: p, wasm: p.wasm}\n")
    higress = json.loads(CliRunner().invoke(main, ["-f", str(tmp_path), "check", "--json"]).output)
    assert higress["emulations"] == []


def test_check_text_says_what_differs_plugin_by_plugin_and_for_the_stack(tmp_path):
    from click.testing import CliRunner

    from .wasm_builders import plugin
    from higress_local.cli.main import main

    # A module importing the Higress-only Redis functions (emulated) next to a plain one.
    (tmp_path / "r.wasm").write_bytes(plugin(abi="0_2_100", imports=(("env", "proxy_log"), ("env", "proxy_redis_init"))))
    (tmp_path / "hlocal.yaml").write_text("name: emu\nruntime: native\nplugins:\n  - {name: r, wasm: r.wasm}\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "check"])
    text = result.output
    assert "emulated Higress behaviour (stock Envoy), and what still differs:" in text, text
    for entry in BEHAVIOUR_EMULATIONS:
        assert f"  {entry.key}: " in text
    assert "decoder_buffer_limit: only bodies a plugin's body callbacks buffer are limited" in text
    assert "properties: node.metadata.*" in text
