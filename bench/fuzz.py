"""Fuzz the module inspector/adapter and the Redis relay by the ten thousand (fixed seed, reproducible).

    python bench/fuzz.py [--count 10000] [--seed 20261207] [--modules redisecho,replay-protection]
                         [--only modules|relay] [--budget 20] [--jobs 1]

Modules: `--count` mutations (bit flips, truncations, swapped/duplicated sections, lying sizes,
splices) spread over real plugins: the `redisecho` SDK plugin (needs HLOCAL_TEST_GOPROXY) and the
official replay-protection (needs HLOCAL_TEST_HIGRESS_SRC too), each case in a worker process under
`--budget` seconds. Relay: `--count` exchanges, half malformed replies from a fake Redis, half
malformed HTTP/RESP from a client. Case N of a seed is always the same input: the printed case
numbers replay a finding (tests/fuzz_modules.py `mutate`, tests/fuzz_relay.py `server_case`/`client_case`).
Exit status 1 when any case crashed, hung or was answered wrongly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_modules import Base, Report, fuzz  # noqa: E402
from fuzz_relay import fuzz_relay  # noqa: E402

PLUGINS = {"redisecho": ("sdk", "redisecho"), "replay-protection": ("higress", "extensions/replay-protection")}


def _module(name: str) -> Path:
    kind, ref = PLUGINS[name]
    if kind == "sdk":
        from sdk_build import build_sdk_plugin, goproxy_unavailable

        why = goproxy_unavailable()
        if why:
            sys.exit(f"cannot build {name}: {why}")
        return build_sdk_plugin(ref)
    from higress_build import build_higress_plugin, higress_src_unavailable

    why = higress_src_unavailable()
    if why:
        sys.exit(f"cannot build {name}: {why}")
    return build_higress_plugin(ref)


def fuzz_modules(names: list[str], seed: int, count: int, budget: float, jobs: int) -> int:
    bugs = 0
    for n, name in enumerate(names):
        base = Base(f"{name}.wasm", _module(name).read_bytes())
        share = count // len(names) + (1 if n < count % len(names) else 0)
        started = time.monotonic()
        report = Report()
        step = max(1, share // 10)
        for first in range(0, share, step):  # in slices, to print progress
            fuzz(base, seed, min(step, share - first), budget, report, first=first, jobs=jobs)
            print(f"  {name}: {report.cases}/{share} cases, {time.monotonic() - started:.0f} s: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())), flush=True)
        print(f"modules: {name} ({len(base.data) / 1e6:.1f} MB): {report.cases} cases in "
              f"{time.monotonic() - started:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())))
        for kind in sorted({k for k, _ in report.by_kind}):
            counts = {o: c for (k, o), c in report.by_kind.items() if k == kind}
            print(f"    {kind:<18} " + ", ".join(f"{o} {c}" for o, c in sorted(counts.items())))
        for index, kind, outcome, detail in report.bugs[:20]:
            print(f"  BUG case {index} ({kind}): {outcome}: {detail.strip().splitlines()[-1] if detail else ''}")
        bugs += len(report.bugs)
    return bugs


def fuzz_the_relay(seed: int, count: int) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hlocal-fuzz-relay-") as tmp:
        report, stderr, died = fuzz_relay(seed, count, Path(tmp))
    print(f"relay: {report.cases} exchanges in {time.monotonic() - started:.0f} s; relay "
          f"{'exited ' + str(died) if died is not None else 'alive'}; tracebacks on its stderr: "
          f"{stderr.count('Traceback')}")
    for (kind, status), n in sorted(report.outcomes.items(), key=str):
        print(f"    {kind:<24} {'closed' if status is None else status}: {n}")
    for side, index, kind, what in report.problems[:20]:
        print(f"  BUG {side} case {index} ({kind}): {what}")
    return len(report.problems) + (died is not None) + stderr.count("Traceback")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="cases per target (modules, relay)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--modules", default="redisecho,replay-protection",
                        help=f"comma-separated, of: {', '.join(PLUGINS)}")
    parser.add_argument("--only", choices=("modules", "relay"))
    parser.add_argument("--budget", type=float, default=20.0, help="seconds one module case may take")
    parser.add_argument("--jobs", type=int, default=1, help="module cases run in this many worker processes")
    args = parser.parse_args()
    names = [n for n in args.modules.split(",") if n]
    unknown = [n for n in names if n not in PLUGINS]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; known: {', '.join(PLUGINS)}")
    bugs = 0
    if args.only != "modules":
        bugs += fuzz_the_relay(args.seed, args.count)
    if args.only != "relay":
        bugs += fuzz_modules(names, args.seed, args.count, args.budget, args.jobs)
    print(f"seed {args.seed}: {'no crash, hang or wrong answer' if not bugs else f'{bugs} problem(s)'}")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
