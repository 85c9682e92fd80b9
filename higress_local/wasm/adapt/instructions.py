"""Decode function bodies just enough to find (and renumber) the indices their instructions carry.

Covers the MVP, sign extension, saturating truncation, bulk memory, reference types and tail calls
(what Go, TinyGo and the shim emit); anything else (SIMD, threads, exceptions) is refused with the
offset, never skipped blindly.
"""

from __future__ import annotations

from typing import Iterator

from .binary import AdaptError, sleb, uleb

# What a reference in a body points into.
FUNC, GLOBAL, TYPE = "func", "global", "type"

_NO_IMMEDIATE = frozenset(
    [0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1] + list(range(0x45, 0xC5))
)
_MEMARG = frozenset(range(0x28, 0x3F))


def _skip_memarg(data: bytes, pos: int) -> int:
    align, pos = uleb(data, pos)
    if align & 0x40:  # multi-memory: a memory index follows
        _, pos = uleb(data, pos)
    _, pos = uleb(data, pos)
    return pos


def references(data: bytes, start: int, end: int) -> Iterator[tuple[str, int, int, int]]:
    """Yield (space, index, imm_start, imm_end) for each function/global/type index in a body."""
    count, pos = uleb(data, start)
    for _ in range(count):  # locals: (count, valtype) pairs
        _, pos = uleb(data, pos)
        pos += 1
    while pos < end:
        op = data[pos]
        at = pos
        pos += 1
        if op in _NO_IMMEDIATE:
            continue
        if op == 0x20 or op == 0x21 or op == 0x22 or op == 0x0C or op == 0x0D:
            _, pos = uleb(data, pos)
        elif op in _MEMARG:
            pos = _skip_memarg(data, pos)
        elif op == 0x41:
            _, pos = sleb(data, pos)
        elif op == 0x42:
            _, pos = sleb(data, pos)
        elif op == 0x10 or op == 0x12 or op == 0xD2:
            index, after = uleb(data, pos)
            yield FUNC, index, pos, after
            pos = after
        elif op == 0x23 or op == 0x24:
            index, after = uleb(data, pos)
            yield GLOBAL, index, pos, after
            pos = after
        elif op in (0x02, 0x03, 0x04):
            if data[pos] == 0x40 or data[pos] >= 0x6F and data[pos] <= 0x7F:
                pos += 1
            else:
                index, after = sleb(data, pos)
                yield TYPE, index, pos, after
                pos = after
        elif op == 0x0E:
            n, pos = uleb(data, pos)
            for _ in range(n + 1):
                _, pos = uleb(data, pos)
        elif op == 0x11 or op == 0x13:
            index, after = uleb(data, pos)
            yield TYPE, index, pos, after
            _, pos = uleb(data, after)  # table index
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op == 0x3F or op == 0x40:
            _, pos = uleb(data, pos)
        elif op == 0x1C:
            n, pos = uleb(data, pos)
            pos += n
        elif op == 0x25 or op == 0x26:
            _, pos = uleb(data, pos)
        elif op == 0xD0:
            pos += 1
        elif op == 0xFC:
            sub, pos = uleb(data, pos)
            if sub <= 7:
                pass
            elif sub in (8, 10, 12, 14):
                _, pos = uleb(data, pos)
                _, pos = uleb(data, pos)
            elif sub in (9, 11, 13, 15, 16, 17):
                _, pos = uleb(data, pos)
            else:
                raise AdaptError(f"unsupported instruction 0xfc {sub} at offset {at}")
        else:
            raise AdaptError(f"unsupported instruction {op:#04x} at offset {at}")
    if pos != end:
        raise AdaptError(f"function body at offset {start} does not end where its size says")
