"""Benchmark: `hlocal reload` under steady load, against the raw ECDS file swap and a restart.

One stack (the `headers` test plugin, config `response_headers: {x-version: "1"}`) takes a steady
loopback load (tests/load.py: 4 client threads, each on its own keep-alive connection) while, in turn:

  (a) config   hlocal.yaml x-version changes, then `hlocal reload`;     new = response x-version
  raw          the module swap done by hand: the adapted module copied into the stack's modules
               directory under a new name, a new ECDS file renamed over the old one (no hlocal);
               new = response x-build
  (b) code     the plugin's wasm replaced by another build, then `hlocal reload`; new = x-build
  (c) restart  `hlocal down` + `hlocal up` with a changed x-version;   new = response x-version

Each is measured from t0, taken just before the trigger (the `hlocal` subprocess is started, or
the first file is written), to the start of the first request after which every request answered
200 with the new marker: the time a client waits until the change is really everywhere. It includes
the CLI's process start and everything hlocal does (config load, module inspection and adaptation,
staging, waiting on the admin stats), so it is what a user sees, not hlocal's own "live in X s"
(printed next to it). Failed requests and worst latency count the requests started from t0 on.
After the trigger has finished, the load goes on for a further `--tail` requests, then stops.

Choices, so the comparison stays honest:
- Every code change is a module Envoy has never seen: the builds alternate between
  `-X main.buildTag=b1` and `=b2` (so the response changes) and each also gets a unique custom
  section (so the bytes, hence the content-addressed file name and the VM key, never repeat and no
  compiled-module cache can make one side look faster). raw and (b) swap modules of the same size.
- The raw swap is done by this process with the module bytes already adapted (that is hlocal's
  work, not the physical floor); the module write and the ECDS rename are inside the timed window.
- Order per run: (a), raw, (b). raw leaves Envoy on a version hlocal's state does not know; (b) then
  swaps from it to a fresh build, which puts hlocal's state and Envoy back in agreement.
- The listener port is picked from the OS once and written into hlocal.yaml (port 0 would give the
  restarted stack another port, and the load could not follow it). The admin port stays 0.
- The load loop retries a refused connection at once, so in (c) the failure count mostly measures
  how fast a refused connect spins; the outage (first to last failure) is the comparable figure.

    python bench/reload.py [--runs 3] [--runtime native|docker] [--tail 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from load import LoadLoop, LoadResult  # noqa: E402
from plugin_build import DEFAULT_CACHE_DIR, build_plugin  # noqa: E402

HLOCAL = [sys.executable, "-m", "higress_local"]
NAME = "reloadbench"
PLUGIN = "headers"
FILTER = f"hlocal.plugin.{PLUGIN}"
TAGS = ("b1", "b2")
THREADS = 4
WARMUP_REQUESTS = 200
CMD_TIMEOUT_S = 180.0
LOAD_MAX_S = 240.0  # a hard bound on every load loop, whatever happens to the trigger


class BenchError(RuntimeError):
    pass


@dataclass
class Measurement:
    scenario: str
    to_all_new: float | None  # seconds from t0; None: some request after the change still saw the old one
    requests: int  # started from t0 on
    failed: int
    worst: float
    outage: float  # first to last failed request (0 when none failed)
    reported: float | None  # hlocal's own figure ("live in X s" / "up ... in X s")
    baseline_p50: float  # steady-state latency before t0, for context
    baseline_p99: float


def run(argv: list[str], timeout: float = CMD_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv)} took longer than {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stack:
    """The project directory, its hlocal.yaml and the running stack's state files."""

    def __init__(self, directory: Path, runtime: str, port: int) -> None:
        self.dir, self.runtime, self.port = directory, runtime, port
        self.wasm = directory / "plugin.wasm"
        self.state_dir = directory / ".hlocal" / NAME
        self.hlocal = [*HLOCAL, "-f", str(directory)]

    def write_config(self, version: str) -> None:
        flavor = "  flavor: envoy\n" if self.runtime == "docker" else ""
        text = (f"name: {NAME}\nruntime: {self.runtime}\n"
                f"gateway:\n  port: {self.port}\n  admin_port: 0\n  log_level: warning\n{flavor}"
                f"plugins:\n  - name: {PLUGIN}\n    wasm: plugin.wasm\n"
                f"    config: {{response_headers: {{x-version: \"{version}\"}}}}\n")
        tmp = self.dir / ".hlocal.yaml.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.dir / "hlocal.yaml")

    def write_wasm(self, data: bytes) -> None:
        tmp = self.dir / ".plugin.wasm.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.wasm)

    def state(self) -> dict:
        return json.loads((self.state_dir / "state.json").read_text())

    def up(self) -> float | None:
        out = run([*self.hlocal, "up"]).stdout
        found = re.search(r" is up on .* in ([0-9.]+) s", out)
        return float(found.group(1)) if found else None

    def down(self) -> None:
        run([*self.hlocal, "down"], check=False, timeout=120)

    def reload(self) -> float | None:
        out = run([*self.hlocal, "reload"]).stdout
        found = re.findall(r"live in ([0-9.]+) s", out)
        if not found:
            raise BenchError(f"hlocal reload changed nothing:\n{out}")
        return float(found[-1])

    def live_version(self) -> str | None:
        """version_text of the plugin's ECDS resource, straight from Envoy's admin stats."""
        admin = f"http://127.0.0.1:{self.state()['admin_port']}"
        stat = f"extension_config_discovery.http_filter.{FILTER}.version_text"
        url = f"{admin}/stats?filter=^{re.escape(stat)}$"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:  # the admin is served by Envoy's main thread, which also compiles the module
            return None
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if name == stat:
                return value.strip().strip('"')
        return None


class Modules:
    """Distinct builds of the headers plugin: a tag (visible as x-build) plus a unique custom section."""

    def __init__(self) -> None:
        self.builds = {tag: build_plugin(PLUGIN, DEFAULT_CACHE_DIR, ldflags=f"-X main.buildTag={tag}").read_bytes()
                       for tag in TAGS}
        self.count = 0

    def fresh(self, tag: str) -> bytes:
        from higress_local.wasm import add_custom_section

        self.count += 1
        return add_custom_section(self.builds[tag], "hlocal-bench", f"{os.getpid()}-{self.count}".encode())


def measure(stack: Stack, scenario: str, marker: str, is_new: Callable[[str | None], bool],
            trigger: Callable[[], float | None], tail: int) -> Measurement:
    """Run the load, trigger the change at t0, keep the load `tail` requests past the trigger's end."""
    loop = LoadLoop(stack.port, threads=THREADS, marker_header=marker, max_seconds=LOAD_MAX_S)
    with loop:
        loop.wait_for_requests(WARMUP_REQUESTS, timeout=60)
        t0 = time.monotonic()
        reported = trigger()
        loop.wait_for_requests(loop.result.total + tail, timeout=60)
    samples = loop.result.samples
    before = [s.seconds for s in samples if s.started < t0]
    window = LoadResult([s for s in samples if s.started >= t0])
    failed = window.failed
    outage = (max(s.started + s.seconds for s in failed) - min(s.started for s in failed)) if failed else 0.0
    return Measurement(scenario=scenario, to_all_new=window.first_time_all_new(is_new, since=t0),
                       requests=window.total, failed=len(failed), worst=window.worst_latency, outage=outage,
                       reported=reported, baseline_p50=percentile(before, 0.5), baseline_p99=percentile(before, 0.99))


def prepare_raw_swap(stack: Stack, adapted: bytes, version: str, timeout: float = 60.0) -> Callable[[], None]:
    """The module change without hlocal: new module file, new ECDS file renamed over the old one.

    Everything but the two writes and the wait is done here, before t0.
    """
    layout = stack.state()["extra"]["layout"]
    gateway_modules = Path(layout["modules"][PLUGIN]).parent  # the directory as the gateway sees it
    ecds = stack.state_dir / "ecds" / f"{PLUGIN}.json"
    doc = json.loads(ecds.read_text())
    module_name = f"raw-{version}.wasm"
    config = doc["resources"][0]["typed_config"]["config"]
    config["vm_config"]["code"]["local"]["filename"] = str(gateway_modules / module_name)
    doc["version_info"] = version
    text = json.dumps(doc, indent=2)
    module = stack.state_dir / "modules" / module_name
    tmp = ecds.parent / f".{ecds.name}.raw.tmp"

    def swap() -> None:
        module.write_bytes(adapted)
        tmp.write_text(text)
        os.replace(tmp, ecds)
        end = time.monotonic() + timeout
        while stack.live_version() != version:  # the same completion rule hlocal uses
            if time.monotonic() > end:
                raise BenchError(f"Envoy did not take the raw ECDS swap to {version} within {timeout:.0f} s "
                                 f"(see {stack.state_dir / 'logs'})")
            time.sleep(0.02)

    return swap


def bench(stack: Stack, runs: int, tail: int, restart_runs: int) -> tuple[dict[str, list[Measurement]], float]:
    from higress_local.wasm import adapt_for_stock_envoy

    modules = Modules()
    results: dict[str, list[Measurement]] = {"config": [], "raw": [], "code": [], "restart": []}
    version, tag = 1, TAGS[0]
    stack.write_config(str(version))
    stack.write_wasm(modules.fresh(tag))
    stack.up()

    def show(m: Measurement) -> None:
        new = f"{m.to_all_new:.3f} s" if m.to_all_new is not None else "never"
        rep = f", hlocal says {m.reported:.2f} s" if m.reported is not None else ""
        print(f"  {m.scenario:<8} all new after {new:>9}, {m.requests:6d} requests, {m.failed:5d} failed, "
              f"worst {m.worst * 1000:7.1f} ms{rep}", flush=True)

    noop = []
    for index in range(runs):
        print(f"run {index + 1}/{runs}", flush=True)
        version += 1
        stack.write_config(str(version))
        want = str(version)
        results["config"].append(measure(stack, "config", "x-version", lambda v: v == want, stack.reload, tail))
        show(results["config"][-1])

        tag = TAGS[1] if tag == TAGS[0] else TAGS[0]
        adapted = adapt_for_stock_envoy(modules.fresh(tag))
        raw_version = f"raw{index + 1}-{os.getpid()}"
        swap = prepare_raw_swap(stack, adapted, raw_version)
        results["raw"].append(measure(stack, "raw", "x-build", lambda v, t=tag: v == t, swap, tail))
        show(results["raw"][-1])

        tag = TAGS[1] if tag == TAGS[0] else TAGS[0]
        stack.write_wasm(modules.fresh(tag))
        results["code"].append(measure(stack, "code", "x-build", lambda v, t=tag: v == t, stack.reload, tail))
        show(results["code"][-1])

        started = time.monotonic()
        out = run([*stack.hlocal, "reload"]).stdout
        noop.append(time.monotonic() - started)
        if "nothing changed" not in out:
            raise BenchError(f"a reload without changes changed something:\n{out}")

    for index in range(restart_runs):
        version += 1
        stack.write_config(str(version))
        want = str(version)

        def restart() -> float | None:
            stack.down()
            return stack.up()

        results["restart"].append(measure(stack, "restart", "x-version", lambda v: v == want, restart, tail))
        show(results["restart"][-1])
    return results, statistics.median(noop)


def report(results: dict[str, list[Measurement]], noop: float, runs: int, restart_runs: int) -> None:
    def med(name: str) -> float | None:
        times = [m.to_all_new for m in results[name]]
        return None if not times or None in times else statistics.median(times)

    def fmt(value: float | None, unit: str = "s") -> str:
        return "never" if value is None else f"{value:.3f} {unit}"

    labels = {"config": "(a) config-only reload", "raw": "raw ECDS swap (no hlocal)",
              "code": "(b) code reload", "restart": "(c) restart: down + up"}
    print(f"\n{'scenario':<27} {'all new after':>14} {'failed':>7} {'worst':>10} {'outage':>9} "
          f"{'hlocal says':>12} {'steady p50/p99':>16}")
    for name, label in labels.items():
        ms = results[name]
        reported = [m.reported for m in ms if m.reported is not None]
        print(f"{label:<27} {fmt(med(name)):>14} {sum(m.failed for m in ms):>7} "
              f"{max(m.worst for m in ms) * 1000:>7.1f} ms {max(m.outage for m in ms):>7.3f} s "
              f"{(f'{statistics.median(reported):.2f} s' if reported else '-'):>12} "
              f"{statistics.median(m.baseline_p50 for m in ms) * 1000:>6.1f}/"
              f"{statistics.median(m.baseline_p99 for m in ms) * 1000:.1f} ms")
    print(f"(all new after: median of {runs} runs ({restart_runs} for restart), from the trigger to the first "
          f"request after which all see the new version; failed: sum; worst, outage: max)")
    print(f"hlocal reload with nothing changed (CLI start, config, module check): {noop:.3f} s median")

    config, raw, code, restart = med("config"), med("raw"), med("code"), med("restart")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print()
    if code is not None and raw:
        print(f"code reload / raw swap     {code / raw:6.2f} x   (target <= 1.1 x: {verdict(code <= 1.1 * raw)})")
    else:
        print("code reload / raw swap        n/a   (target <= 1.1 x: MISSED, a run never saw only the new version)")
    print(f"config-only reload         {fmt(config):>8}   (target <= 0.3 s: "
          f"{verdict(config is not None and config <= 0.3)})")
    if restart is not None and code:
        print(f"restart / code reload      {restart / code:6.2f} x")
    failed_a = sum(m.failed for m in results["config"])
    failed_b = sum(m.failed for m in results["code"])
    print(f"failed requests (a), (b)   {failed_a}, {failed_b}   (target 0 and 0: "
          f"{verdict(failed_a == 0 and failed_b == 0)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of (a), raw and (b)")
    parser.add_argument("--restart-runs", type=int, default=1, help="repetitions of (c)")
    parser.add_argument("--runtime", default="native", choices=["native", "docker"])
    parser.add_argument("--tail", type=int, default=300, help="requests after the trigger finished")
    args = parser.parse_args()

    from higress_local.ports import free_port

    if args.runtime == "docker":
        from docker_images import ensure_test_images

        os.environ.update(ensure_test_images())
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-reload-") as tmp:
        stack = Stack(Path(tmp), args.runtime, free_port())
        try:
            results, noop = bench(stack, args.runs, args.tail, args.restart_runs)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            stack.down()
            if (stack.state_dir / "state.json").exists():
                print(f"warning: {stack.state_dir} still has a stack state after `hlocal down`", file=sys.stderr)
    size = build_plugin(PLUGIN, DEFAULT_CACHE_DIR, ldflags=f"-X main.buildTag={TAGS[0]}").stat().st_size
    print(f"\nruntime: {args.runtime}, plugin: {PLUGIN} ({size:,} bytes), "
          f"{THREADS} client threads on loopback, {os.cpu_count()} CPUs")
    report(results, noop, args.runs, args.restart_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
