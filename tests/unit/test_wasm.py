"""Unit tests for higress_local.wasm.module: parsing, compatibility, ABI rename, custom sections."""

from __future__ import annotations

import hashlib
import importlib.resources

import pytest
import wasmtime

from higress_local.higress import hostcalls
from higress_local.wasm import module as wasm
from higress_local.wasm.compat import check_compatibility
from higress_local.errors import InvalidWasm, PluginError

from .wasm_builders import HEADER, plugin, validates

REDIS = (("env", "proxy_log"), ("env", "proxy_redis_call"))


# ---------------------------------------------------------------- inspection


def test_inspect_reads_imports_exports_and_hash():
    data = plugin()
    info = wasm.inspect_bytes(data, "main.wasm")
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.abi_version == "0.2.100"
    assert info.host_functions == ("proxy_log",)
    assert info.imports == (wasm.Import("env", "proxy_log", "func", 0),)
    assert info.export_names == (
        "memory",
        "proxy_abi_version_0_2_100",
        "proxy_on_memory_allocate",
        "_initialize",
    )
    assert info.exports[0] == wasm.Export("memory", "memory", 0)
    assert info.custom_sections == ("name",)  # wat2wasm keeps the $names


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("0_1_0", "0.1.0"), ("0_2_0", "0.2.0"), ("0_2_1", "0.2.1"), ("0_2_100", "0.2.100"),
     ("0_3_0", None), (None, None)],
)
def test_abi_version_from_export_name(suffix, expected):
    assert wasm.inspect_bytes(plugin(abi=suffix)).abi_version == expected


def test_wasi_functions_and_non_function_imports():
    extra = """
  (import "env" "table" (table 1 funcref))
  (import "env" "g" (global i32))
  (import "env" "mem" (memory 1 2))"""
    data = wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) '
        '(result i32)))' + extra + ")"
    )
    info = wasm.inspect_bytes(data)
    assert info.wasi_functions == ("fd_write",)
    assert info.host_functions == ()
    assert [(i.name, i.kind, i.type_index) for i in info.imports] == [
        ("fd_write", "func", 0), ("table", "table", None), ("g", "global", None),
        ("mem", "memory", None),
    ]


def test_custom_section_names_and_payload_offsets():
    data = wasm.add_custom_section(plugin(), "hlocal", b"payload!")
    info = wasm.inspect_bytes(data)
    assert info.custom_sections == ("name", "hlocal")
    custom = [s for s in wasm.read_sections(data) if s.id == 0][-1]
    assert data[custom.content_offset : custom.end] == b"payload!"


def test_inspect_file_labels_errors_and_missing_file(tmp_path):
    good = tmp_path / "main.wasm"
    good.write_bytes(plugin())
    assert wasm.inspect_file(good).abi_version == "0.2.100"

    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"hello world")
    with pytest.raises(InvalidWasm, match=r"^plugins\[0\]\.wasm is not a WebAssembly module"):
        wasm.inspect_file(bad, label="plugins[0].wasm")

    missing = tmp_path / "nope.wasm"
    with pytest.raises(PluginError) as err:
        wasm.inspect_file(missing, label="plugins[2].wasm")
    assert not isinstance(err.value, InvalidWasm)
    assert err.value.message == f"wasm file not found: {missing}"
    assert "plugins[2].wasm" in err.value.hint

    with pytest.raises(PluginError, match="is a directory"):
        wasm.inspect_file(tmp_path)


# ---------------------------------------------------------------- broken input


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello world\n", r"^main\.wasm is not a WebAssembly module: it starts with "
                           r"b'hello wo' \(a text file\?\)$"),
        (b"", r"^main\.wasm is empty \(0 bytes\)$"),
        (b"\x00asm", r"^main\.wasm is truncated: 4 bytes, but the module header alone is 8$"),
        (b"\x7fELF\x02\x01\x01\x00", r"native ELF binary"),
        (b"\x00asm\x0d\x00\x01\x00", r"version bytes .* not version 1 \(a WebAssembly component"),
        (b"\x00asm\x02\x00\x00\x00", r"not version 1$"),
    ],
    ids=["text", "empty", "four-bytes", "elf", "component", "version-2"],
)
def test_not_a_module(data, message):
    with pytest.raises(InvalidWasm, match=message) as err:
        wasm.inspect_bytes(data, "main.wasm")
    assert "GOOS=wasip1 GOARCH=wasm" in err.value.hint


def _boundaries(data: bytes) -> set[int]:
    """Offsets where cutting leaves a valid (shorter) module: the header end and section ends."""
    return {8} | {s.end for s in wasm.read_sections(data)}


def _named_cut_points(data: bytes) -> dict[str, int]:
    sections = {s.id: s for s in wasm.read_sections(data)}
    return {
        "in-magic": 2,
        "in-version": 6,
        "after-section-id": 9,
        "mid-import-section": sections[2].offset + 3,
        "mid-export-name": sections[7].offset + 4,
        "mid-code-section": sections[10].offset + 1,
        "last-byte-missing": len(data) - 1,
    }


@pytest.mark.parametrize("point", list(_named_cut_points(plugin(imports=REDIS))))
def test_truncated_module_raises_invalid_wasm(point):
    data = plugin(imports=REDIS)
    cut = _named_cut_points(data)[point]
    with pytest.raises(InvalidWasm, match=r"^main\.wasm is truncated"):
        wasm.inspect_bytes(data[:cut], "main.wasm")


def test_every_truncation_raises_invalid_wasm_only():
    data = plugin(imports=REDIS)
    cuts = [n for n in range(1, len(data)) if n not in _boundaries(data)]
    assert len(cuts) > 100
    for n in cuts:
        with pytest.raises(InvalidWasm):
            wasm.inspect_bytes(data[:n])


def test_section_size_past_end_names_section_and_sizes():
    data = HEADER + b"\x0a\xd2\xfa\x04" + b"\x00" * 4000  # code section declaring 81234 bytes
    with pytest.raises(InvalidWasm) as err:
        wasm.inspect_bytes(data, "main.wasm")
    assert err.value.message == (
        "main.wasm is truncated: section 10 (code) declares 81234 bytes at offset 12 but only "
        "4000 remain"
    )


def test_leb128_running_off_the_end():
    with pytest.raises(InvalidWasm, match=r"LEB128 size of section 1 \(type\) at offset 9 runs "
                                          r"past the end of the file"):
        wasm.inspect_bytes(HEADER + b"\x01\x80\x80", "main.wasm")


def test_leb128_too_long_or_too_big():
    with pytest.raises(InvalidWasm, match="longer than 32 bits allow"):
        wasm.inspect_bytes(HEADER + b"\x01\x80\x80\x80\x80\x80\x00")
    with pytest.raises(InvalidWasm, match="does not fit in 32 bits"):
        wasm.inspect_bytes(HEADER + b"\x01\xff\xff\xff\xff\x7f")


def test_section_content_lying_about_its_layout_is_malformed():
    # Export section of 3 bytes claiming 5 exports, the first with a 9-byte name.
    with pytest.raises(InvalidWasm, match=r"is malformed: export 0 name at offset 12 declares 9 "
                                          r"bytes but only 1 remain in section 7 \(export\)"):
        wasm.inspect_bytes(HEADER + b"\x07\x03\x05\x09a")
    # An import section with bytes left over after its entries.
    with pytest.raises(InvalidWasm, match=r"section 2 \(import\) has 2 unread bytes"):
        wasm.inspect_bytes(HEADER + b"\x02\x03\x00\x00\x00")


def test_unknown_section_id_and_import_kind():
    with pytest.raises(InvalidWasm, match="byte 0x2a at offset 8 is not a WebAssembly section id"):
        wasm.inspect_bytes(HEADER + b"\x2a\x00")
    entry = b"\x01\x01m\x01n\x09"
    with pytest.raises(InvalidWasm, match=r"import m\.n has unknown kind 0x09"):
        wasm.inspect_bytes(HEADER + b"\x02" + bytes([len(entry)]) + entry)


# ---------------------------------------------------------------- compatibility


def test_higress_abi_on_stock_envoy_needs_rename_and_stop_iteration():
    info = wasm.inspect_bytes(plugin())
    envoy = check_compatibility(info, "envoy")
    assert envoy.runnable and envoy.problems == []
    assert envoy.adaptations[0] == (
        "rename export proxy_abi_version_0_2_100 → proxy_abi_version_0_2_1"
    )
    assert "allow_on_headers_stop_iteration" in envoy.adaptations[1]
    higress = check_compatibility(info, "higress")
    assert (higress.runnable, higress.adaptations, higress.problems) == (True, [], [])


def test_stock_abi_needs_no_adaptation():
    result = check_compatibility(wasm.inspect_bytes(plugin(abi="0_2_1")), "envoy")
    assert (result.runnable, result.adaptations) == (True, [])


REDIS_EXPORTS = ('(func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))'
                 '(func (export "proxy_on_redis_call_response") (param i32 i32 i32 i32))')


def test_redis_import_outside_a_go_module_runs_only_on_higress():
    info = wasm.inspect_bytes(plugin(imports=REDIS, extra=REDIS_EXPORTS))
    envoy = check_compatibility(info, "envoy")
    assert not envoy.runnable
    [problem] = envoy.problems
    assert "env.proxy_redis_call" in problem and "Redis" in problem
    assert "flavor higress" in problem and "no go:buildid section" in problem
    assert check_compatibility(info, "higress").runnable


def test_redis_import_in_a_go_module_is_emulated_on_stock_envoy():
    data = wasm.add_custom_section(plugin(imports=REDIS, extra=REDIS_EXPORTS), "go:buildid", b"x")
    envoy = check_compatibility(wasm.inspect_bytes(data), "envoy")
    assert envoy.runnable, envoy.problems
    assert envoy.emulations == ["redis"]
    assert any("Redis (proxy_redis_call) through hlocal's Redis relay" in a for a in envoy.adaptations)


def test_redis_without_the_callback_export_is_refused_with_the_reason():
    data = wasm.add_custom_section(plugin(imports=REDIS), "go:buildid", b"x")
    [problem] = check_compatibility(wasm.inspect_bytes(data), "envoy").problems
    assert "does not export proxy_on_http_call_response, proxy_on_redis_call_response" in problem


@pytest.mark.parametrize("name", ["proxy_get_upstream_metrics", "proxy_override_upstream_host"])
def test_functions_without_a_faithful_emulation_stay_refused(name):
    data = wasm.add_custom_section(plugin(imports=(("env", "proxy_log"), ("env", name))), "go:buildid", b"x")
    result = check_compatibility(wasm.inspect_bytes(data), "envoy")
    [problem] = result.problems
    assert f"env.{name}" in problem and "cannot emulate on stock Envoy" in problem
    assert "stock" in problem and "flavor higress" in problem
    assert not result.runnable and result.emulations == []


@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_unknown_imports_are_problems_on_both_flavors(flavor):
    info = wasm.inspect_bytes(
        plugin(imports=(("env", "proxy_teleport"), ("wasi_snapshot_preview1", "proc_raise"),
                        ("gojs", "runtime.wasmExit")))
    )
    result = check_compatibility(info, flavor)
    assert not result.runnable
    assert result.problems == [
        "Envoy will refuse to load: missing import env.proxy_teleport",
        "Envoy will refuse to load: missing import wasi_snapshot_preview1.proc_raise",
        "Envoy will refuse to load: missing import gojs.runtime.wasmExit "
        "(built with GOOS=js? use GOOS=wasip1)",
    ]


def test_abi_specific_host_function_under_older_abi():
    info = wasm.inspect_bytes(plugin(abi="0_2_0", imports=(("env", "proxy_get_log_level"),)))
    [problem] = check_compatibility(info, "envoy").problems
    assert "missing import env.proxy_get_log_level" in problem
    assert "ABI 0.2.1 modules, this one declares 0.2.0" in problem
    assert check_compatibility(wasm.inspect_bytes(plugin(
        abi="0_2_100", imports=(("env", "proxy_get_log_level"),))), "envoy").runnable


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"abi": None}, "no proxy_abi_version_* export: not a proxy-wasm plugin"),
        ({"abi": "0_3_0"}, "exports proxy_abi_version_0_3_0, an ABI no gateway here knows"),
        ({"memory": False}, "no `memory` export"),
        ({"allocator": None}, "exports neither malloc nor proxy_on_memory_allocate"),
    ],
    ids=["no-abi", "unknown-abi", "no-memory", "no-allocator"],
)
@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_structural_problems(kwargs, needle, flavor):
    result = check_compatibility(wasm.inspect_bytes(plugin(**kwargs)), flavor)
    assert not result.runnable
    assert any(needle in p for p in result.problems), result.problems


def test_malloc_export_is_enough():
    info = wasm.inspect_bytes(plugin(allocator="malloc"))
    assert check_compatibility(info, "envoy").runnable


def test_unknown_flavor_is_a_programming_error():
    with pytest.raises(ValueError, match="flavor"):
        check_compatibility(wasm.inspect_bytes(plugin()), "nginx")


def test_foreign_function_candidates_from_data_section():
    extra = '(data (i32.const 16) "xxget_log_levelyy compress")'
    data = plugin(extra=extra)
    assert wasm.foreign_function_candidates(data) == ("get_log_level",)
    info = wasm.inspect_bytes(data)
    assert info.foreign_candidates == ("get_log_level",)
    result = check_compatibility(info, "envoy")
    assert result.runnable
    assert result.notes and "get_log_level" in result.notes[0] and "NotFound" in result.notes[0]
    assert wasm.foreign_function_candidates(plugin()) == ()


def test_get_log_level_is_emulated_in_go_modules_that_call_foreign_functions():
    data = plugin(imports=(("env", "proxy_log"), ("env", "proxy_call_foreign_function")),
                  extra='(data (i32.const 16) "get_log_level")')
    data = wasm.add_custom_section(data, "go:buildid", b"x")
    result = check_compatibility(wasm.inspect_bytes(data), "envoy")
    assert result.runnable and result.emulations == ["get_log_level"] and result.notes == []
    assert any("get_log_level answers the stack's gateway.wasm_log_level" in a for a in result.adaptations)


def test_tables_are_consistent():
    assert not hostcalls.STOCK_ENVOY_HOST_FUNCTIONS & set(hostcalls.HIGRESS_HOST_FUNCTIONS)
    assert not hostcalls.STOCK_ENVOY_FOREIGN_FUNCTIONS & set(hostcalls.HIGRESS_FOREIGN_FUNCTIONS)
    assert "proc_raise" not in hostcalls.WASI_FUNCTIONS
    assert "proxy_get_log_level" in hostcalls.higress_env_functions("0.2.100")
    assert "proxy_get_log_level" not in hostcalls.stock_envoy_env_functions("0.2.0")


# ---------------------------------------------------------------- ABI rename


def _sections_by_id(data: bytes) -> list[tuple[int, bytes]]:
    return [(s.id, data[s.offset : s.end]) for s in wasm.read_sections(data)]


def test_adapt_renames_only_the_abi_export():
    original = plugin(imports=REDIS)
    copy = bytearray(original)
    adapted = wasm.adapt_for_stock_envoy(copy)
    assert copy == original  # input untouched
    before, after = wasm.inspect_bytes(original), wasm.inspect_bytes(adapted)
    assert after.export_names == tuple(
        "proxy_abi_version_0_2_1" if n == "proxy_abi_version_0_2_100" else n
        for n in before.export_names
    )
    assert [e.index for e in after.exports] == [e.index for e in before.exports]
    assert after.abi_version == "0.2.1" and after.imports == before.imports
    old, new = _sections_by_id(original), _sections_by_id(adapted)
    assert [i for i, _ in old] == [i for i, _ in new]
    assert [s for s in old if s[0] != 7] == [s for s in new if s[0] != 7]
    assert len(adapted) == len(original) - 2
    assert validates(adapted)


def test_adapt_reencodes_section_size_when_its_leb_shrinks():
    # Extra exports make the export section exactly 128 bytes (a 2-byte LEB128 size);
    # the rename takes it to 126 (1 byte).
    names = ["export_00", "export_01", "export_02", "export_003"]
    original = plugin(extra="\n".join(f'(func (export "{n}"))' for n in names))
    section = [s for s in wasm.read_sections(original) if s.id == 7][0]
    assert section.size == 128
    adapted = wasm.adapt_for_stock_envoy(original)
    assert len(adapted) == len(original) - 3  # two name bytes and one size byte
    assert wasm.inspect_bytes(adapted).abi_version == "0.2.1"
    assert validates(adapted)


@pytest.mark.parametrize("abi", ["0_2_1", "0_1_0", None])
def test_adapt_leaves_other_modules_unchanged(abi):
    data = plugin(abi=abi)
    assert wasm.adapt_for_stock_envoy(data) == data


def test_adapt_keeps_module_that_already_has_stock_abi():
    data = plugin(extra='(func (export "proxy_abi_version_0_2_1"))')
    assert wasm.adapt_for_stock_envoy(data) == data


def test_adapt_rejects_broken_input():
    with pytest.raises(InvalidWasm):
        wasm.adapt_for_stock_envoy(plugin()[:-3])


# ---------------------------------------------------------------- custom sections


def test_add_custom_section_keeps_module_valid_and_changes_hash():
    data = plugin()
    out = wasm.add_custom_section(data, "hlocal.reload", b"\x01\x02")
    assert out.startswith(data) and out != data
    assert wasm.inspect_bytes(out).sha256 != wasm.inspect_bytes(data).sha256
    assert wasm.inspect_bytes(out).export_names == wasm.inspect_bytes(data).export_names
    assert validates(out)
    with pytest.raises(ValueError, match="precompiled"):
        wasm.add_custom_section(data, "precompiled_v8", b"")
    with pytest.raises(InvalidWasm):
        wasm.add_custom_section(b"nope", "x", b"")


# ---------------------------------------------------------------- the real transformer plugin


def _transformer_bytes() -> bytes:
    try:
        root = importlib.resources.files("gpustack_higress_plugins")
    except ModuleNotFoundError:
        pytest.skip("gpustack-higress-plugins is not installed (pip install -e '.[dev]')")
    return (root / "plugins/transformer/2.0.0/plugin.wasm").read_bytes()


def test_real_transformer_plugin():
    data = _transformer_bytes()
    info = wasm.inspect_bytes(data, "transformer")
    assert info.abi_version == "0.2.100"
    assert "_initialize" in info.export_names and "proxy_on_memory_allocate" in info.export_names
    assert set(info.host_functions) == {
        "proxy_log", "proxy_get_header_map_value", "proxy_remove_header_map_value",
        "proxy_get_header_map_pairs", "proxy_set_header_map_pairs", "proxy_get_buffer_bytes",
        "proxy_set_buffer_bytes", "proxy_set_tick_period_milliseconds",
        "proxy_set_effective_context", "proxy_get_property", "proxy_set_property",
    }
    assert {"sched_yield", "poll_oneoff", "fd_write"} <= set(info.wasi_functions)

    envoy = check_compatibility(info, "envoy")
    assert envoy.runnable, envoy.problems
    assert envoy.adaptations[0].startswith("rename export proxy_abi_version_0_2_100")
    assert check_compatibility(info, "higress").runnable

    adapted = wasm.adapt_for_stock_envoy(data)
    assert wasm.inspect_bytes(adapted).abi_version == "0.2.1"
    assert validates(adapted)


def test_the_upstream_host_functions_are_emulated_in_go_builds():
    names = (("env", "proxy_log"), ("env", "proxy_get_upstream_hosts"), ("env", "proxy_set_upstream_override_host"))
    data = wasm.add_custom_section(plugin(imports=names), "go:buildid", b"x")
    result = check_compatibility(wasm.inspect_bytes(data), "envoy")
    assert result.runnable and result.emulations == ["upstream_hosts"]
    assert any("override-host policy" in a for a in result.adaptations)
