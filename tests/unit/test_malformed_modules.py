"""Corrupted modules found by tests/integration/test_fuzz.py: the inspector and the adapter's parser
refuse them with InvalidWasm and a message naming what is wrong (they raised IndexError, or adapted
a module no engine loads)."""

from __future__ import annotations

import pytest
import wasmtime

from higress_local.wasm.adapt.binary import parse_module
from higress_local.errors import InvalidWasm
from higress_local.wasm.module import inspect_bytes, read_sections

MODULE = wasmtime.wat2wasm('(module (import "env" "f" (func (param i32))) (func (export "g") (call 0 (i32.const 7))))')


def _sections(data: bytes) -> dict[int, tuple[int, int]]:
    return {s.id: (s.start, s.end) for s in read_sections(data)}


def test_a_repeated_or_reordered_section_is_refused() -> None:
    start, end = _sections(MODULE)[2]  # the import section
    repeated = MODULE[:end] + MODULE[start:end] + MODULE[end:]
    with pytest.raises(InvalidWasm, match=r"section 2 \(import\) at offset \d+ is repeated or out of order"):
        inspect_bytes(repeated)
    types, imports = _sections(MODULE)[1], _sections(MODULE)[2]
    swapped = MODULE[:8] + MODULE[imports[0]:imports[1]] + MODULE[types[0]:types[1]] + MODULE[imports[1]:]
    with pytest.raises(InvalidWasm, match="out of order"):
        read_sections(swapped)


def test_a_function_body_size_that_lies_is_refused() -> None:
    code_start, code_end = _sections(MODULE)[10]
    body_size_at = code_start + 3  # id, section size, count: then the first body's size (one byte each here)
    longer = bytearray(MODULE)
    longer[body_size_at] += 1
    with pytest.raises(InvalidWasm, match="runs past the end of the file|bodies end at"):
        parse_module(bytes(longer), "m.wasm")
    shorter = bytearray(MODULE)
    shorter[body_size_at] -= 1
    with pytest.raises(InvalidWasm, match=r"bodies end at offset \d+, not where the code section ends"):
        parse_module(bytes(shorter), "m.wasm")


def test_an_import_naming_a_type_that_does_not_exist_is_refused() -> None:
    start, end = _sections(MODULE)[2]
    entry = MODULE.index(b"\x01f\x00\x00", start)  # name "f", kind func, type 0
    broken = bytearray(MODULE)
    broken[entry + 3] = 9
    with pytest.raises(InvalidWasm, match="import env.f names type 9 of"):
        parse_module(bytes(broken), "m.wasm")
