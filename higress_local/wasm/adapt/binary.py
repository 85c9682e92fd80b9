"""The parts of a module's binary the adapter rewrites: types, imports, functions, exports, bodies, data.

Only what the merge needs is decoded; everything else stays as byte ranges of the original, so a
20 MB module is mostly copied, never re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import InvalidWasm
from ..module import BUILD_HINT, Section, encode_name, read_sections, uleb_encode


class AdaptError(Exception):
    """The module cannot be adapted; the message says precisely why (it reaches the user)."""


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at pos; return (value, next position)."""
    return _leb(data, pos, signed=False)


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at pos; return (value, next position)."""
    return _leb(data, pos, signed=True)


def _leb(data: bytes, pos: int, signed: bool) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if signed and byte & 0x40:  # sign bit of the last group: extend
                result -= 1 << shift
            return result, pos


# The encoders live in wasm/module.py (the ABI rename uses them too).
uleb_bytes = uleb_encode
name_bytes = encode_name


def section_bytes(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + uleb_bytes(len(payload)) + payload


def vector(items: list[bytes]) -> bytes:
    return uleb_bytes(len(items)) + b"".join(items)


FuncType = tuple[bytes, bytes]  # (param valtypes, result valtypes), one byte each


@dataclass
class ImportEntry:
    module: str
    name: str
    kind: int  # 0 func, 1 table, 2 memory, 3 global, 4 tag
    desc: bytes  # the bytes after the kind byte (type index for functions)
    type_index: int | None = None


@dataclass
class ExportEntry:
    name: str
    kind: int
    index: int


@dataclass
class Module:
    """A parsed module: decoded tables where the merge edits, byte ranges elsewhere."""

    data: bytes
    sections: tuple[Section, ...]
    types: list[FuncType] = field(default_factory=list)
    imports: list[ImportEntry] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)  # type index of each defined function
    global_count: int = 0  # imported + defined
    exports: list[ExportEntry] = field(default_factory=list)
    bodies: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each body's bytes
    body_prefixes: list[int] = field(default_factory=list)  # where each body's size prefix starts
    element_functions: set[int] = field(default_factory=set)
    start_function: int | None = None

    @property
    def func_imports(self) -> list[ImportEntry]:
        return [i for i in self.imports if i.kind == 0]

    @property
    def function_count(self) -> int:
        return len(self.func_imports) + len(self.functions)

    def section(self, section_id: int) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)

    def import_index(self, module: str, name: str) -> int | None:
        for index, imp in enumerate(self.func_imports):
            if imp.module == module and imp.name == name:
                return index
        return None

    def export(self, name: str) -> ExportEntry | None:
        return next((e for e in self.exports if e.name == name), None)

    def func_type(self, index: int) -> FuncType:
        imports = self.func_imports
        if index < len(imports):
            return self.types[imports[index].type_index or 0]
        return self.types[self.functions[index - len(imports)]]


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = uleb(data, pos)
    return data[pos : pos + length].decode("utf-8"), pos + length


def _skip_limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    _, pos = uleb(data, pos + 1)
    if flags & 1:
        _, pos = uleb(data, pos)
    return pos


def _skip_const_expr(data: bytes, pos: int) -> int:
    """Skip a constant expression (i32/i64/f32/f64.const, global.get, ref.null, ref.func … end)."""
    while True:
        op = data[pos]
        pos += 1
        if op == 0x0B:
            return pos
        if op in (0x41, 0x42):
            _, pos = sleb(data, pos)
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op in (0x23, 0xD2):
            _, pos = uleb(data, pos)
        elif op == 0xD0:
            pos += 1
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            continue
        else:
            raise AdaptError(f"unsupported constant expression opcode {op:#04x} at offset {pos - 1}")


def _parse_types(m: Module, s: Section) -> None:
    data, pos = m.data, s.offset
    count, pos = uleb(data, pos)
    for _ in range(count):
        if data[pos] != 0x60:
            raise AdaptError(f"type section uses form {data[pos]:#04x}, not a plain function type")
        n, pos = uleb(data, pos + 1)
        params, pos = data[pos : pos + n], pos + n
        n, pos = uleb(data, pos)
        results, pos = data[pos : pos + n], pos + n
        m.types.append((bytes(params), bytes(results)))


def _parse_imports(m: Module, s: Section) -> None:
    data, pos = m.data, s.offset
    count, pos = uleb(data, pos)
    for _ in range(count):
        module, pos = _read_name(data, pos)
        name, pos = _read_name(data, pos)
        kind, start = data[pos], pos + 1
        type_index = None
        if kind == 0:
            type_index, pos = uleb(data, start)
        elif kind == 1:
            pos = _skip_limits(data, start + 1)
        elif kind == 2:
            pos = _skip_limits(data, start)
        elif kind == 3:
            pos = start + 2
            m.global_count += 1
        else:
            _, pos = uleb(data, start + 1)
        m.imports.append(ImportEntry(module, name, kind, data[start:pos], type_index))


def _parse_elements(m: Module, s: Section) -> None:
    """Collect every function an element segment names (those must keep their meaning)."""
    data, pos = m.data, s.offset
    count, pos = uleb(data, pos)
    for _ in range(count):
        flags, pos = uleb(data, pos)
        if flags & 0b100:
            raise AdaptError("element segments with expressions are not supported")
        if flags & 0b001 == 0:  # active
            if flags & 0b010:
                _, pos = uleb(data, pos)  # table index
            pos = _skip_const_expr(data, pos)
        if flags & 0b011:
            pos += 1  # elemkind
        n, pos = uleb(data, pos)
        for _ in range(n):
            index, pos = uleb(data, pos)
            m.element_functions.add(index)


def _parse_code(m: Module, s: Section) -> None:
    data, pos = m.data, s.offset
    count, pos = uleb(data, pos)
    bodies, prefixes = m.bodies, m.body_prefixes
    for _ in range(count):
        prefixes.append(pos)
        size, pos = uleb(data, pos)
        bodies.append((pos, pos + size))
        pos += size


def parse_module(data: bytes, name: str = "module") -> Module:
    """Parse what the merge needs; raise InvalidWasm for broken files, AdaptError for unsupported ones."""
    m = Module(data=data, sections=read_sections(data, name))
    try:
        for s in m.sections:
            pos = s.offset
            if s.id == 1:
                _parse_types(m, s)
            elif s.id == 2:
                _parse_imports(m, s)
            elif s.id == 3:
                count, pos = uleb(data, pos)
                for _ in range(count):
                    index, pos = uleb(data, pos)
                    m.functions.append(index)
            elif s.id == 6:
                count, _ = uleb(data, pos)
                m.global_count += count
            elif s.id == 7:
                count, pos = uleb(data, pos)
                for _ in range(count):
                    export_name, pos = _read_name(data, pos)
                    kind = data[pos]
                    index, pos = uleb(data, pos + 1)
                    m.exports.append(ExportEntry(export_name, kind, index))
            elif s.id == 8:
                m.start_function, _ = uleb(data, pos)
            elif s.id == 9:
                _parse_elements(m, s)
            elif s.id == 10:
                _parse_code(m, s)
    except IndexError:  # a count or size that lies runs past the end of the file
        raise InvalidWasm(f"{name} is malformed: {s.label} at offset {s.start} runs past the end of the file",
                          BUILD_HINT) from None
    _check_indices(m, name)
    return m


def _check_indices(m: Module, name: str) -> None:
    """The indices the merge follows point inside their tables (a corrupted file's may not)."""
    problem = ""
    for imp in m.func_imports:
        if (imp.type_index or 0) >= len(m.types):
            problem = f"import {imp.module}.{imp.name} names type {imp.type_index} of {len(m.types)}"
    for index, type_index in enumerate(m.functions):
        if type_index >= len(m.types):
            problem = f"function {index} names type {type_index} of {len(m.types)}"
    if len(m.bodies) != len(m.functions):
        problem = f"{len(m.functions)} functions are declared but the code section has {len(m.bodies)} bodies"
    code = m.section(10)
    if code is not None and m.bodies and m.bodies[-1][1] != code.end:
        problem = f"the function bodies end at offset {m.bodies[-1][1]}, not where the code section ends ({code.end})"
    if problem:
        raise InvalidWasm(f"{name} is malformed: {problem}", BUILD_HINT)


def data_segment_ranges(m: Module) -> list[tuple[int, int]]:
    """Memory ranges [start, end) the active data segments of memory 0 initialise."""
    s = m.section(11)
    if s is None:
        return []
    try:
        return _segment_ranges(m.data, s.offset)
    except IndexError:  # a count or size that lies
        raise AdaptError(f"the data section at offset {s.start} runs past the end of the file") from None


def _segment_ranges(data: bytes, pos: int) -> list[tuple[int, int]]:
    count, pos = uleb(data, pos)
    ranges = []
    for _ in range(count):
        flags, pos = uleb(data, pos)
        if flags == 1:  # passive
            size, pos = uleb(data, pos)
            pos += size
            continue
        if flags == 2:
            _, pos = uleb(data, pos)
        if data[pos] == 0x41 and data[pos + 1] < 0x80 and data[pos + 2] == 0x0B:
            offset, pos = data[pos + 1], pos + 3  # the common one-byte i32.const
        elif data[pos] == 0x41:
            offset, pos = sleb(data, pos + 1)
            if data[pos] != 0x0B:
                raise AdaptError("a data segment's offset is not a constant")
            pos += 1
        else:
            raise AdaptError("a data segment's offset is not an i32 constant")
        size, pos = uleb(data, pos)
        ranges.append((offset, offset + size))
        pos += size
    return ranges
