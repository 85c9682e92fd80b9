"""Merge shim functions into a copy of a module, without renumbering anything the module already has.

How it stays fast on a 20 MB module: new types, functions, globals and data segments are appended
(existing indices keep their meaning); an import only Higress provides stays in the import table
but is re-pointed to a stock host function (or, when the shim needs one the module lacks, to that
one), so no index shifts; and only the bodies that call a redirected import are decoded — found by
a byte search for `call <index>`, then confirmed by decoding that body. Every other body is copied
byte for byte.
"""

from __future__ import annotations

import bisect

from .binary import AdaptError, FuncType, ImportEntry, Module, name_bytes, section_bytes, sleb, uleb, uleb_bytes, vector
from .instructions import FUNC, GLOBAL, TYPE, references
from .plan import MergePlan

CALL_OPCODES = (0x10, 0x12, 0xD2)  # call, return_call, ref.func
# Engines refuse a module with more data segments (V8 kV8MaxWasmDataSegments, wasmtime alike); Go's
# linker fills a large module (a 20 MB MCP server) up to exactly this many.
MAX_DATA_SEGMENTS = 100_000
DEAD_IMPORT = ("env", "proxy_log", (b"\x7f\x7f\x7f", b"\x7f"))  # stock in every ABI: keeps a slot linkable


def _encode_type(t: FuncType) -> bytes:
    return b"\x60" + uleb_bytes(len(t[0])) + t[0] + uleb_bytes(len(t[1])) + t[1]


def _encode_import(imp: ImportEntry) -> bytes:
    return name_bytes(imp.module) + name_bytes(imp.name) + bytes([imp.kind]) + imp.desc


def sleb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def _rewrite_body(data: bytes, start: int, end: int, maps: dict[str, dict[int, int]]) -> bytes:
    """The body with every mapped index replaced (LEB lengths may change; the caller re-sizes)."""
    pieces, last = [], start
    for space, index, imm_start, imm_end in references(data, start, end):
        mapping = maps.get(space)
        if mapping is not None and index in mapping:
            pieces += [data[last:imm_start], uleb_bytes(mapping[index])]
            last = imm_end
    pieces.append(data[last:end])
    return b"".join(pieces)


def _shim_closure(shim: Module, roots: list[int]) -> list[int]:
    """Defined shim functions reachable from the roots (function indices in the shim's space)."""
    n_imports = len(shim.func_imports)
    seen, todo = set(), list(roots)
    while todo:
        index = todo.pop()
        if index in seen or index < n_imports:
            continue
        seen.add(index)
        start, end = shim.bodies[index - n_imports]
        todo += [i for space, i, _, _ in references(shim.data, start, end) if space == FUNC]
    return sorted(seen)


def _shim_data(shim: Module) -> list[tuple[int, bytes]]:
    s = shim.section(11)
    if s is None:
        return []
    data = shim.data
    count, pos = uleb(data, s.offset)
    segments = []
    for _ in range(count):
        flags, pos = uleb(data, pos)
        if flags != 0 or data[pos] != 0x41:
            raise AdaptError("the shim's data segments must be active at constant addresses")
        address, pos = sleb(data, pos + 1)
        size, pos = uleb(data, pos + 1)  # + 1: the expression's `end`
        segments.append((address, data[pos:pos + size]))
        pos += size
    return segments


def _segment(address: int, payload: bytes) -> bytes:
    return b"\x00\x41" + sleb_bytes(address) + b"\x0b" + uleb_bytes(len(payload)) + payload


def _data_section(m: Module, extra: list[tuple[int, bytes]]) -> tuple[bytes, int]:
    """The module's data section with the shim's bytes as one more segment, and the new count; at the
    engines' segment limit the bytes are folded into the module's first segment instead."""
    s = m.section(11)
    assert s is not None
    data = m.data
    count, rest = uleb(data, s.offset)
    if not extra:
        return data[s.start:s.end], count
    start = min(address for address, _ in extra)
    blob = bytearray(max(address + len(payload) for address, payload in extra) - start)
    for address, payload in extra:
        blob[address - start:address - start + len(payload)] = payload
    if count < MAX_DATA_SEGMENTS:
        return section_bytes(11, uleb_bytes(count + 1) + data[rest:s.end] + _segment(start, bytes(blob))), count + 1
    flags, pos = uleb(data, rest)
    if flags != 0 or data[pos] != 0x41:
        raise AdaptError("the module's first data segment is not active at a constant address")
    address, pos = sleb(data, pos + 1)
    size, pos = uleb(data, pos + 1)  # + 1: the expression's `end`
    if address < start + len(blob):
        raise AdaptError(f"the module has {count} data segments (the engines' limit) and its first one, at "
                         f"{address}, leaves no room for hlocal's emulation data")
    folded = bytes(blob) + bytes(address - start - len(blob)) + data[pos:pos + size]
    return section_bytes(11, uleb_bytes(count) + _segment(start, folded) + data[pos + size:s.end]), count


class _Merge:
    """One merge: the target's tables as they grow, and the shim's indices mapped into them."""

    def __init__(self, m: Module, shim: Module, plan: MergePlan) -> None:
        for section_id, what in ((1, "type"), (6, "global"), (10, "code"), (11, "data")):
            if m.section(section_id) is None:
                raise AdaptError(f"the module has no {what} section (not a Go-built module?)")
        self.m, self.shim, self.plan = m, shim, plan
        self.types = list(m.types)
        self.imports = [ImportEntry(i.module, i.name, i.kind, i.desc, i.type_index) for i in m.imports]
        self.func_imports = [i for i in self.imports if i.kind == 0]
        self.roots = self._roots()
        self.included = _shim_closure(shim, list(self.roots.values()))
        # Shim function index -> module function index (its own functions go after the module's).
        self.funcs = {index: m.function_count + n for n, index in enumerate(self.included)}
        self.globals: dict[int, int] = {}
        self.reused: dict[int, int] = {}  # duplicate import slot now holding a shim import -> its first copy

    def type_index(self, t: FuncType) -> int:
        if t not in self.types:
            self.types.append(t)
        return self.types.index(t)

    def _roots(self) -> dict[tuple[str, str], int]:
        roots = {}
        for kind, names in (("redirect", self.plan.redirects), ("export", self.plan.exports)):
            for name in names:
                entry = self.shim.export(self.plan.export_from.get(name, f"export:{name}") if kind == "export"
                                         else f"{kind}:{name}")
                if entry is None:
                    raise AdaptError(f"hlocal's shim has no replacement for {name}")
                roots[(kind, name)] = entry.index
        return roots

    def retired_slots(self) -> list[int]:
        """Import slots of Higress-only functions: free once their call sites move to the shim."""
        m, slots = self.m, []
        for name in self.plan.retire:
            index = m.import_index("env", name)
            if index is None:
                continue
            if index in m.element_functions or m.start_function == index or any(
                    e.kind == 0 and e.index == index for e in m.exports):
                raise AdaptError(f"import {name} is referenced from a table, the start function or an "
                                 f"export, so hlocal cannot take it over")
            slots.append(index)
        return slots

    def duplicate_slots(self) -> list[tuple[int, int]]:
        """(slot, first slot) of imports the module makes twice (Go's wasip1 runtime imports fd_write and
        random_get twice): a later copy's calls can go to the first, freeing its slot for a host function
        the emulation needs and the module lacks (no index moves)."""
        m, first, slots = self.m, {}, []
        referenced = set(m.element_functions) | {m.start_function} | {e.index for e in m.exports if e.kind == 0}
        for slot, imp in enumerate(m.func_imports):
            key = (imp.module, imp.name, m.func_type(slot))
            if key in first and slot not in referenced:
                slots.append((slot, first[key]))
            first.setdefault(key, slot)
        return slots

    def _point(self, slot: int, module: str, name: str, t: FuncType) -> None:
        index = self.type_index(t)
        imp = self.func_imports[slot]
        imp.module, imp.name, imp.type_index, imp.desc = module, name, index, uleb_bytes(index)

    def bind_imports(self, retired: list[int]) -> None:
        """Shim imports: host functions -> the module's imports (or a freed slot), "hlocal" -> its exports."""
        shim, m = self.shim, self.m
        n_shim_imports = len(shim.func_imports)
        needed: set[int] = set()
        for index in self.included:
            start, end = shim.bodies[index - n_shim_imports]
            needed |= {i for space, i, _, _ in references(shim.data, start, end)
                       if space == FUNC and i < n_shim_imports}
        free = list(retired)
        spare = self.duplicate_slots()
        for index in sorted(needed):
            imp = shim.func_imports[index]
            if imp.module == "hlocal":
                export = m.export(imp.name)
                if export is None or export.kind != 0:
                    raise AdaptError(f"the module does not export {imp.name}, which the emulation calls")
                self.funcs[index] = export.index
                continue
            wanted = shim.types[imp.type_index or 0]
            existing = m.import_index(imp.module, imp.name)
            if existing is not None and existing not in retired:
                if m.func_type(existing) != wanted:
                    raise AdaptError(f"the module imports {imp.name} with an unexpected signature")
                self.funcs[index] = existing
            elif free:
                slot = free.pop(0)
                self._point(slot, imp.module, imp.name, wanted)
                self.funcs[index] = slot
            elif spare:
                slot, original = spare.pop(0)
                self.reused[slot] = original
                self._point(slot, imp.module, imp.name, wanted)
                self.funcs[index] = slot
            else:
                raise AdaptError(f"the emulation needs host function {imp.name}, which the module does not "
                                 f"import, and no import slot is free to add it")
        for slot in free:
            self._point(slot, *DEAD_IMPORT)

    def shim_globals(self) -> tuple[int, bytes]:
        """How many globals the shim adds, and their encoded entries (appended after the module's)."""
        s = self.shim.section(6)
        if s is None:
            return 0, b""
        count, pos = uleb(self.shim.data, s.offset)
        self.globals = {i: self.m.global_count + i for i in range(count)}
        return count, self.shim.data[pos:s.end]

    def shim_functions(self) -> tuple[list[int], list[bytes]]:
        """Type index and encoded body of each included shim function, renumbered into the module."""
        shim, n_shim_imports = self.shim, len(self.shim.func_imports)
        type_map = {i: self.type_index(t) for i, t in enumerate(shim.types)}
        types, bodies = [], []
        for index in self.included:
            start, end = shim.bodies[index - n_shim_imports]
            body = _rewrite_body(shim.data, start, end, {FUNC: self.funcs, GLOBAL: self.globals, TYPE: type_map})
            bodies.append(uleb_bytes(len(body)) + body)
            types.append(type_map[shim.functions[index - n_shim_imports]])
        return types, bodies

    def redirect_call_sites(self, retired: list[int]) -> dict[int, bytes]:
        """Bodies of the module that call a redirected import, rewritten to call the shim instead."""
        m = self.m
        redirect = {}
        for name in self.plan.redirects:
            index = m.import_index("env", name)
            if index is None:
                raise AdaptError(f"the module does not import {name}")
            redirect[index] = self.funcs[self.roots[("redirect", name)]]
        redirect.update(self.reused)  # calls of a reused duplicate import go to its first copy
        code = m.section(10)
        assert code is not None
        starts = [b[0] for b in m.bodies]
        candidates = set()
        for target in redirect:
            for opcode in CALL_OPCODES:
                needle = bytes([opcode]) + uleb_bytes(target)
                at = m.data.find(needle, code.offset, code.end)
                while at != -1:
                    candidates.add(bisect.bisect_right(starts, at) - 1)
                    at = m.data.find(needle, at + 1, code.end)
        rewritten, called = {}, set()
        for body in sorted(c for c in candidates if c >= 0):
            start, end = m.bodies[body]
            hits = {i for space, i, _, _ in references(m.data, start, end) if space == FUNC and i in redirect}
            if hits:
                rewritten[body] = _rewrite_body(m.data, start, end, {FUNC: redirect})
                called |= hits
        for index in retired:
            if index in redirect and index not in called:
                raise AdaptError(f"found no call of {m.func_imports[index].name} to redirect")
        return rewritten

    def code_section(self, rewritten: dict[int, bytes], extra: list[bytes]) -> bytes:
        m = self.m
        code = m.section(10)
        assert code is not None
        count, last = uleb(m.data, code.offset)
        pieces = [uleb_bytes(count + len(extra))]
        for body in sorted(rewritten):
            pieces += [m.data[last:m.body_prefixes[body]], uleb_bytes(len(rewritten[body])), rewritten[body]]
            last = m.bodies[body][1]
        pieces += [m.data[last:code.end], *extra]
        return section_bytes(10, b"".join(pieces))


def merge(m: Module, shim: Module, plan: MergePlan) -> bytes:
    """Return the module with the shim merged as the plan says (see the module docstring)."""
    job = _Merge(m, shim, plan)
    retired = job.retired_slots()
    job.bind_imports(retired)
    global_count, new_globals = job.shim_globals()
    func_types, func_bodies = job.shim_functions()
    rewritten = job.redirect_call_sites(retired)
    exports = {name: job.funcs[job.roots[("export", name)]] for name in plan.exports}
    data_section, data_count = _data_section(m, _shim_data(shim) + list(plan.data))

    data, out = m.data, [m.data[:8]]
    for s in m.sections:
        count, rest = uleb(data, s.offset) if s.id in (3, 6, 11, 12) else (0, s.offset)
        if s.id == 1:
            out.append(section_bytes(1, vector([_encode_type(t) for t in job.types])))
        elif s.id == 2:
            out.append(section_bytes(2, vector([_encode_import(i) for i in job.imports])))
        elif s.id == 3:
            extra = b"".join(uleb_bytes(t) for t in func_types)
            out.append(section_bytes(3, uleb_bytes(count + len(func_types)) + data[rest:s.end] + extra))
        elif s.id == 6:
            out.append(section_bytes(6, uleb_bytes(count + global_count) + data[rest:s.end] + new_globals))
        elif s.id == 7:
            out.append(section_bytes(7, vector([
                name_bytes(plan.renames.get(e.name, e.name)) + bytes([e.kind])
                + uleb_bytes(exports.get(e.name, e.index) if e.kind == 0 else e.index)
                for e in m.exports])))
        elif s.id == 10:
            out.append(job.code_section(rewritten, func_bodies))
        elif s.id == 11:
            out.append(data_section)
        elif s.id == 12:  # data count must match the data section
            out.append(section_bytes(12, uleb_bytes(data_count)))
        else:
            out.append(data[s.start:s.end])
    return b"".join(out)
