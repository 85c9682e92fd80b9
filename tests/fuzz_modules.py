"""Fuzz the module inspector and the adapter with mutations of real plugins (fixed seed, reproducible).

Case `i` of seed `s` is always the same mutation of the same base module, so a finding is replayed
with `mutate(base, s, i)`. Each case runs in a worker process under a wall-clock budget: a case that
does not finish in time counts as a hang and the worker is replaced. Outcomes:

- ``adapted``: `adapt_module` returned a module that hlocal's own inspector reads back;
- ``refused``: an `HlocalError` (PluginError, InvalidWasm) with a non-empty message and hint;
- ``crash``: any other exception (a bug), ``hang``: past the budget (a bug),
  ``bad-output``: adapted bytes hlocal itself cannot read (a bug).
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from unittest import mock

from higress_local.wasm.adapt import adapter
from higress_local.wasm.adapt.binary import parse_module
from higress_local.wasm.adapt.plan import plan_for
from higress_local.errors import HlocalError
from higress_local.wasm.module import Section, inspect_bytes, read_sections

KINDS = ("bitflip-structure", "bitflip-code", "bitflip-calls", "bitflip-anywhere", "truncate",
         "swap-sections", "duplicate-section", "section-size", "splice")
BUGS = ("crash", "hang", "bad-output")


@dataclass
class Base:
    """A real module and where its parts are, so mutations can aim at what the parsers read."""

    name: str
    data: bytes
    sections: tuple[Section, ...] = ()
    calls: list[tuple[int, int]] = field(default_factory=list)  # bodies calling an import the shim takes

    def __post_init__(self) -> None:
        self.sections = read_sections(self.data, self.name)
        m = parse_module(self.data, self.name)
        redirects = plan_for(inspect_bytes(self.data, self.name)).merge.redirects
        patterns = [b"\x10" + _leb(i) for i in (m.import_index("env", n) for n in redirects) if i is not None]
        self.calls = [(a, b) for a, b in m.bodies if any(p in self.data[a:b] for p in patterns)]

    @property
    def code(self) -> Section:
        return next(s for s in self.sections if s.id == 10)


def _flip(data: bytearray, rng: random.Random, low: int, high: int, flips: int) -> None:
    for _ in range(flips):
        at = rng.randrange(low, max(low + 1, high))
        data[at] ^= 1 << rng.randrange(8)


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _section_size(base: Base, rng: random.Random) -> bytes:
    """One section's declared size replaced by a lie: 0, off by a little, huge, or an overlong LEB."""
    s = rng.choice(base.sections)
    size = rng.choice([0, max(0, s.size - rng.randrange(1, 9)), s.size + rng.randrange(1, 9), 2**32 - 1,
                       rng.randrange(2**31)])
    encoded = _leb(size) if rng.random() < 0.8 else b"\xff" * rng.randrange(5, 12) + b"\x00"
    return base.data[:s.start + 1] + encoded + base.data[s.offset:]


def mutate(base: Base, seed: int, index: int) -> tuple[str, bytes]:
    """Case `index` of `seed`: (kind, mutated bytes)."""
    rng = random.Random(f"{seed}:{index}:{base.name}")
    kind = KINDS[index % len(KINDS)]
    data, sections, code = base.data, base.sections, base.code
    if kind == "bitflip-calls" and base.calls:  # the bodies the merge decodes and rewrites
        out = bytearray(data)
        start, end = rng.choice(base.calls)
        _flip(out, rng, start, end, rng.choice((1, 1, 2, 4)))
        return kind, bytes(out)
    if kind.startswith("bitflip"):
        out = bytearray(data)
        low, high = {"bitflip-structure": (0, code.offset + 64), "bitflip-code": (code.offset, code.end),
                     }.get(kind, (0, len(data)))
        _flip(out, rng, low, high, rng.choice((1, 1, 2, 4, 16)))
        return kind, bytes(out)
    if kind == "truncate":
        cut = rng.choice([rng.randrange(len(data)), rng.choice(sections).start + rng.randrange(-3, 4)])
        return kind, data[:max(0, cut)]
    if kind == "section-size":
        return kind, _section_size(base, rng)
    raw = [data[s.start:s.end] for s in sections]
    if kind == "swap-sections":
        i, j = rng.sample(range(len(raw)), 2)
        raw[i], raw[j] = raw[j], raw[i]
    elif kind == "duplicate-section":
        i = rng.randrange(len(raw))
        raw.insert(rng.randrange(len(raw) + 1), raw[i])
    else:  # splice: a run of bytes from one place copied over another
        out = bytearray(data)
        n = rng.randrange(1, 64)
        src, dst = rng.randrange(len(data) - n), rng.randrange(min(len(data) - n, code.offset + 256))
        out[dst:dst + n] = data[src:src + n]
        return kind, bytes(out)
    return kind, data[:8] + b"".join(raw)


def run_case(base: Base, seed: int, index: int) -> tuple[str, str, str]:
    """(kind, outcome, detail) of one case, in this process."""
    kind, data = mutate(base, seed, index)
    try:
        inspect_bytes(data, "fuzzed.wasm")
        # The cache is for users; 10,000 adapted copies would fill the disk.
        with mock.patch.object(adapter, "cached", lambda key, produce: produce()):
            out = adapter.adapt_module(data, name="fuzzed.wasm")
    except HlocalError as exc:
        if not exc.message.strip() or not exc.hint.strip():
            return kind, "crash", f"{type(exc).__name__} without message or hint: {exc!r}"
        return kind, "refused", f"{type(exc).__name__}: {exc.message[:160]}"
    except Exception:  # noqa: BLE001 - any other exception is what the fuzz looks for
        return kind, "crash", traceback.format_exc(limit=-3)
    try:
        inspect_bytes(out, "adapted.wasm")
    except HlocalError as exc:
        return kind, "bad-output", exc.message[:200]
    return kind, "adapted", ""


def _worker(base: Base, seed: int, conn) -> None:
    while True:
        index = conn.recv()
        if index is None:
            return
        conn.send((index, *run_case(base, seed, index)))


@dataclass
class Report:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)  # (kind, outcome)
    bugs: list[tuple[int, str, str, str]] = field(default_factory=list)  # index, kind, outcome, detail

    def add(self, index: int, kind: str, outcome: str, detail: str) -> None:
        self.cases += 1
        self.outcomes[outcome] += 1
        self.by_kind[kind, outcome] += 1
        if outcome in BUGS:
            self.bugs.append((index, kind, outcome, detail))


class _Worker:
    """A forked process running cases one at a time (it inherits the parsed base module)."""

    def __init__(self, base: Base, seed: int) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(base, seed, child), daemon=True)
        self.process.start()
        child.close()

    def run(self, index: int, budget_s: float) -> tuple[str, str, str] | None:
        self.conn.send(index)
        if not self.conn.poll(budget_s):
            return None
        try:
            _, kind, outcome, detail = self.conn.recv()
        except EOFError:  # the worker died (killed by the kernel, interpreter abort): a crash
            self.process.join(10)
            return "?", "crash", f"worker process died (exit {self.process.exitcode})"
        return kind, outcome, detail

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _drive(base: Base, seed: int, indices: range, budget_s: float, report: Report, lock: threading.Lock) -> None:
    worker = _Worker(base, seed)
    try:
        for index in indices:
            result = worker.run(index, budget_s)
            if result is None or not worker.process.is_alive():
                worker.stop(kill=True)
                kind = mutate(base, seed, index)[0]
                result = (kind, *(result[1:] if result else ("hang", f"over {budget_s:.0f} s")))
                worker = _Worker(base, seed)
            with lock:
                report.add(index, *result)
    finally:
        worker.stop()


def fuzz(base: Base, seed: int, count: int, budget_s: float = 20.0, report: Report | None = None,
         first: int = 0, jobs: int = 1) -> Report:
    """Run cases first..first+count-1 of `seed` on `base` in `jobs` worker processes; each case past
    `budget_s` seconds is a hang."""
    report = report or Report()
    lock = threading.Lock()
    threads = [threading.Thread(target=_drive, args=(base, seed, range(first + j, first + count, jobs), budget_s,
                                                     report, lock)) for j in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report
