"""Inspect proxy-wasm modules, decide which gateway can run them, and adapt them for stock Envoy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from higress_local.higress import hostcalls
from higress_local.errors import InvalidWasm, PluginError
from higress_local.system.userfiles import WASM_CAP, read_regular_file

MAGIC = b"\x00asm"
VERSION_1 = b"\x01\x00\x00\x00"
BUILD_HINT = "rebuild it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o main.wasm ."

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount", 13: "tag",
}
KIND_NAMES = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
# Where each non-custom section may stand (WebAssembly core spec, "Modules": each at most once, in
# this order; tag and datacount sit between their neighbours by id).
SECTION_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
IMPORT_SECTION, EXPORT_SECTION, DATA_SECTION = 2, 7, 11

HIGRESS_ABI_EXPORT = hostcalls.ABI_EXPORTS["0.2.100"]
STOCK_ABI_EXPORT = hostcalls.ABI_EXPORTS["0.2.1"]


@dataclass(frozen=True)
class Export:
    """One export: its name, kind ("func", "memory", …) and index in that kind's space."""

    name: str
    kind: str
    index: int = 0


@dataclass(frozen=True)
class Import:
    """One import; `type_index` is set for functions only."""

    module: str
    name: str
    kind: str
    type_index: int | None = None


@dataclass(frozen=True)
class Section:
    """Where one section sits: `start` is its id byte, its payload is data[offset:end]."""

    id: int
    start: int
    offset: int
    size: int
    name: str | None = None  # custom sections only
    content_offset: int = 0  # custom sections: where the bytes after the name begin

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def label(self) -> str:
        return _section_label(self.id)


def _section_label(section_id: int) -> str:
    return f"section {section_id} ({SECTION_NAMES.get(section_id, 'unknown')})"


class _Reader:
    """Cursor over data[pos:end] that raises InvalidWasm instead of IndexError."""

    def __init__(self, data: bytes, pos: int, end: int, module: str, scope: str) -> None:
        self.data, self.pos, self.end, self.module, self.scope = data, pos, end, module, scope

    def fail(self, problem: str) -> InvalidWasm:
        # Past the section table every overrun means the section lies about its own layout.
        state = "truncated" if self.scope == "the file" else "malformed"
        return InvalidWasm(f"{self.module} is {state}: {problem}", BUILD_HINT)

    def byte(self, what: str) -> int:
        if self.pos >= self.end:
            raise self.fail(f"{what} at offset {self.pos} runs past the end of {self.scope}")
        self.pos += 1
        return self.data[self.pos - 1]

    def uleb(self, what: str, bits: int = 32) -> int:
        start, value, shift = self.pos, 0, 0
        max_shift = 7 * ((bits + 6) // 7)  # 5 bytes for a u32, 10 for a u64
        while True:
            if self.pos >= self.end:
                raise self.fail(
                    f"LEB128 {what} at offset {start} runs past the end of {self.scope}"
                )
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= max_shift:
                raise self.fail(f"LEB128 {what} at offset {start} is longer than {bits} bits allow")
        if value >> bits:
            raise self.fail(f"LEB128 {what} at offset {start} does not fit in {bits} bits")
        return value

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(
                f"{what} at offset {self.pos} declares {n} bytes but only "
                f"{self.end - self.pos} remain in {self.scope}"
            )
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def name(self, what: str) -> str:
        raw = self.take(self.uleb(f"{what} length"), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} {raw!r} is not valid UTF-8") from None


def _describe_start(data: bytes) -> str:
    """Guess what a non-wasm file is from its first bytes."""
    head = data[:8]
    if head.startswith(b"\x7fELF"):
        return " (a native ELF binary: build for GOOS=wasip1 GOARCH=wasm)"
    if head.startswith(b"\x1f\x8b"):
        return " (a gzip file: unpack it first)"
    if head.startswith(b"PK\x03\x04"):
        return " (a zip archive: unpack it first)"
    if all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        return " (a text file?)"
    return ""


def _check_header(data: bytes, module: str) -> None:
    if not data:
        raise InvalidWasm(f"{module} is empty (0 bytes)", BUILD_HINT)
    if not data.startswith(MAGIC[: len(data)]):
        raise InvalidWasm(
            f"{module} is not a WebAssembly module: it starts with {data[:8]!r}"
            f"{_describe_start(data)}",
            BUILD_HINT,
        )
    if len(data) < 8:
        raise InvalidWasm(
            f"{module} is truncated: {len(data)} bytes, but the module header alone is 8",
            BUILD_HINT,
        )
    if data[4:8] != VERSION_1:
        kind = " (a WebAssembly component, not a core module?)" if data[6:8] == b"\x01\x00" else ""
        raise InvalidWasm(
            f"{module} has WebAssembly version bytes {data[4:8]!r}, not version 1{kind}", BUILD_HINT
        )


def read_sections(data: bytes, module: str = "module") -> tuple[Section, ...]:
    """Split a module into sections, checking the header and every declared size."""
    data = bytes(data)
    _check_header(data, module)
    reader = _Reader(data, 8, len(data), module, "the file")
    sections, last = [], 0
    while reader.pos < len(data):
        start = reader.pos
        section_id = reader.byte("section id")
        if section_id not in SECTION_NAMES:
            raise InvalidWasm(
                f"{module} is corrupted: byte {section_id:#04x} at offset {start} is not a "
                f"WebAssembly section id",
                BUILD_HINT,
            )
        label = _section_label(section_id)
        if section_id and SECTION_ORDER[section_id] <= last:
            raise InvalidWasm(f"{module} is corrupted: {label} at offset {start} is repeated or out of "
                              f"order (each section appears at most once, in the standard order)", BUILD_HINT)
        last = SECTION_ORDER.get(section_id, last)
        size = reader.uleb(f"size of {label}")
        if size > len(data) - reader.pos:
            raise reader.fail(
                f"{label} declares {size} bytes at offset {reader.pos} but only "
                f"{len(data) - reader.pos} remain"
            )
        sub = _Reader(data, reader.pos, reader.pos + size, module, f"custom section at {start}")
        name = sub.name("custom section name") if section_id == 0 else None
        sections.append(Section(section_id, start, reader.pos, size, name, sub.pos))
        reader.pos += size
    return tuple(sections)


# An export plus its entry's start, the end of its name and the entry's end in the file.
_ExportEntry = tuple[Export, int, int, int]


def _section_reader(data: bytes, section: Section, module: str) -> _Reader:
    return _Reader(data, section.offset, section.end, module, section.label)


def _finish(reader: _Reader, section: Section) -> None:
    if reader.pos != section.end:
        raise reader.fail(f"{section.label} has {section.end - reader.pos} unread bytes at its end")


def _skip_limits(reader: _Reader, what: str) -> None:
    flags = reader.byte(f"{what} limits flags")
    bits = 64 if flags & 0x04 else 32  # memory64 proposal
    reader.uleb(f"{what} minimum", bits)
    if flags & 0x01:
        reader.uleb(f"{what} maximum", bits)


def _parse_imports(data: bytes, section: Section, module: str) -> list[Import]:
    reader = _section_reader(data, section, module)
    imports = []
    for i in range(reader.uleb("import count")):
        mod = reader.name(f"import {i} module name")
        name = reader.name(f"import {i} field name")
        kind_byte = reader.byte(f"import {i} kind")
        type_index = None
        if kind_byte == 0:
            type_index = reader.uleb(f"import {i} type index")
        elif kind_byte == 1:
            reader.byte(f"import {i} table element type")
            _skip_limits(reader, f"import {i} table")
        elif kind_byte == 2:
            _skip_limits(reader, f"import {i} memory")
        elif kind_byte == 3:
            reader.byte(f"import {i} global type")
            reader.byte(f"import {i} global mutability")
        elif kind_byte == 4:
            reader.byte(f"import {i} tag attribute")
            reader.uleb(f"import {i} tag type index")
        else:
            raise reader.fail(f"import {mod}.{name} has unknown kind {kind_byte:#04x}")
        imports.append(Import(mod, name, KIND_NAMES[kind_byte], type_index))
    _finish(reader, section)
    return imports


def _parse_exports(data: bytes, section: Section, module: str) -> list[_ExportEntry]:
    """Parse the export section, keeping each entry's byte positions for rewriting."""
    reader = _section_reader(data, section, module)
    exports = []
    for i in range(reader.uleb("export count")):
        start = reader.pos
        name = reader.name(f"export {i} name")
        name_end = reader.pos
        kind_byte = reader.byte(f"export {name!r} kind")
        if kind_byte not in KIND_NAMES:
            raise reader.fail(f"export {name!r} has unknown kind {kind_byte:#04x}")
        index = reader.uleb(f"export {name!r} index")
        exports.append((Export(name, KIND_NAMES[kind_byte], index), start, name_end, reader.pos))
    _finish(reader, section)
    return exports


def _find_foreign_calls(data: bytes, sections: tuple[Section, ...]) -> tuple[str, ...]:
    # Heuristic: Go keeps string literals in the data section, packed without separators,
    # so a substring match is the best a static look can do. Stock foreign names are left
    # out on purpose: "compress" is in every Go binary through compress/flate.
    payload = b"".join(data[s.offset : s.end] for s in sections if s.id == DATA_SECTION)
    return tuple(n for n in hostcalls.HIGRESS_FOREIGN_FUNCTIONS if n.encode() in payload)


@dataclass(frozen=True)
class ModuleInfo:
    """What a module imports and exports, and which proxy-wasm ABI it declares."""

    size: int
    sha256: str
    exports: tuple[Export, ...]
    imports: tuple[Import, ...]
    custom_sections: tuple[str, ...]
    foreign_candidates: tuple[str, ...] = ()

    @property
    def export_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.exports)

    @property
    def abi_exports(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.exports if e.name.startswith("proxy_abi_version_"))

    @property
    def abi_version(self) -> str | None:
        # Like proxy-wasm-cpp-host: the first known ABI export (a function) wins.
        by_export = {v: k for k, v in hostcalls.ABI_EXPORTS.items()}
        for e in self.exports:
            if e.kind == "func" and e.name in by_export:
                return by_export[e.name]
        return None

    @property
    def host_functions(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.imports if i.module == "env" and i.kind == "func")

    @property
    def wasi_functions(self) -> tuple[str, ...]:
        return tuple(
            i.name for i in self.imports if i.module in hostcalls.WASI_MODULES and i.kind == "func"
        )

    def exports_kind(self, name: str, kind: str) -> bool:
        return any(e.name == name and e.kind == kind for e in self.exports)


def inspect_bytes(data: bytes, name: str = "module") -> ModuleInfo:
    """Parse a module's imports, exports and custom sections; raise InvalidWasm if it is not one."""
    data = bytes(data)
    sections = read_sections(data, name)
    imports: list[Import] = []
    exports: list[Export] = []
    for section in sections:
        if section.id == IMPORT_SECTION:
            imports += _parse_imports(data, section, name)
        elif section.id == EXPORT_SECTION:
            exports += [entry[0] for entry in _parse_exports(data, section, name)]
    return ModuleInfo(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        exports=tuple(exports),
        imports=tuple(imports),
        custom_sections=tuple(s.name for s in sections if s.name is not None),
        foreign_candidates=_find_foreign_calls(data, sections),
    )


def inspect_file(path: str | Path, label: str | None = None) -> ModuleInfo:
    """Read and inspect a module file; `label` (e.g. "plugins[0].wasm") names it in errors."""
    path = Path(path)
    where = label or "plugins[i].wasm"
    # A FIFO, a device or an oversize file is refused before it is read (system/userfiles.py).
    data = read_regular_file(path, WASM_CAP, "wasm file", hint=f"point {where} at the built .wasm file",
                             missing_hint=f"build it first (hlocal build) or fix {where}")
    return inspect_bytes(data, label or str(path))


def foreign_function_candidates(data: bytes, name: str = "module") -> tuple[str, ...]:
    """Return Higress-only foreign functions named in the data section (a heuristic)."""
    data = bytes(data)
    return _find_foreign_calls(data, read_sections(data, name))


def uleb_encode(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    return uleb_encode(len(raw)) + raw


def adapt_for_stock_envoy(data: bytes, name: str = "module") -> bytes:
    """Return a copy with export proxy_abi_version_0_2_100 renamed proxy_abi_version_0_2_1."""
    data = bytes(data)
    section = next((s for s in read_sections(data, name) if s.id == EXPORT_SECTION), None)
    if section is None:
        return data
    entries = _parse_exports(data, section, name)
    names = {entry[0].name for entry in entries}
    if HIGRESS_ABI_EXPORT not in names or STOCK_ABI_EXPORT in names:
        return data
    payload = bytearray(uleb_encode(len(entries)))
    for export, start, name_end, end in entries:
        if export.name == HIGRESS_ABI_EXPORT:
            # Keep kind and index bytes as they were; only the name (and its length) change.
            payload += encode_name(STOCK_ABI_EXPORT) + data[name_end:end]
        else:
            payload += data[start:end]
    rebuilt = bytes([EXPORT_SECTION]) + uleb_encode(len(payload)) + bytes(payload)
    return data[: section.start] + rebuilt + data[section.end :]


def add_custom_section(data: bytes, name: str, payload: bytes, module: str = "module") -> bytes:
    """Return a copy with a custom section appended: new bytes, same behaviour."""
    if "precompiled_" in name:
        # proxy-wasm-cpp-host treats such sections as precompiled code and strips the rest.
        raise ValueError(f"custom section name {name!r} would be taken for precompiled code")
    data = bytes(data)
    read_sections(data, module)
    body = encode_name(name) + bytes(payload)
    return data + b"\x00" + uleb_encode(len(body)) + body

