"""Benchmark: `hlocal reload` under steady load, against the raw ECDS file swap and a restart.

One stack (the `headers` test plugin, config `response_headers: {x-version: "1"}`) takes a steady
loopback load (tests/load.py: 4 client threads, each on its own keep-alive connection) while, in turn:

  (a) config      hlocal.yaml x-version changes, then `hlocal reload`;    new = response x-version
                  (served by the stack's warm reload agent, which `up` starts: entry.py, runtime/agent.py)
  (a') config, agent off   the same with HLOCAL_NO_AGENT=1: the whole CLI starts for it
  raw config      the same kind of change by hand: a new ECDS file (new configuration and
                  version_info) renamed over the old one, no hlocal;       new = response x-version
  raw module      the module swap by hand: the adapted module copied into the stack's modules
                  directory under a new name, a new ECDS file naming it renamed over the old one;
                                                                           new = response x-build
  (b) code        the plugin's wasm replaced by another build, then `hlocal reload`; new = x-build
  (c) restart     `hlocal down` + `hlocal up` with a changed x-version;  new = response x-version

The raw swaps are the physical floor: what Envoy itself needs once the files are there. hlocal adds
to it its process start, config load, module inspection and adaptation, staging and the wait on the
admin stats. With the agent, the process start is a bare interpreter sending one message; the agent
has everything else imported.

Each is measured from t0, taken just before the trigger (the `hlocal` subprocess is started, or
the first file is written), to the start of the first request after which every request answered
200 with the new marker: the time a client waits until the change is really everywhere, as a user
sees it (hlocal's own "live in X s", which leaves out its process start and config load, is printed
next to it). Failed requests and worst latency count the requests started from t0 on. After the
trigger has finished, the load goes on for a further `--tail` requests, then stops. On the native
runtime the gateway log also tells when Envoy started on the change (its first new Wasm VM): the
time before that is what hlocal (or the raw swap) adds, free of the large run-to-run swings of
Envoy's module compile, which dominate a code reload on a busy 2-core machine.

Choices, so the comparison stays honest:
- Every code change is a module Envoy has never seen: the builds alternate between
  `-X main.buildTag=b1` and `=b2` (so the response changes) and each also gets a unique custom
  section (so the bytes, hence the content-addressed file name and the VM key, never repeat and no
  compiled-module cache can make one side look faster). raw and (b) swap modules of the same size.
- The raw swaps are done by this process with the module bytes already adapted and the ECDS text
  already rendered (that is hlocal's work, not the physical floor); the module write and the ECDS
  rename are inside the timed window, and completion is the rule hlocal uses (the ECDS
  version_text in the admin stats).
- Pairs alternate their order across runs ((a) before raw config and (b) before raw module in odd
  runs, after them in even runs), so neither side always follows the other. After a raw swap,
  hlocal.yaml and the wasm file are set to what Envoy now runs and an untimed `hlocal reload` brings
  hlocal's state along (for the module: the same bytes, so Envoy reuses the VM instead of compiling).
  A no-op `hlocal reload` at the end of each run checks that hlocal and Envoy agree.
- Every `hlocal` process gets a bytecode cache (PYTHONPYCACHEPREFIX in the temp dir, warmed before
  the first measurement), as in any installation; PYTHONDONTWRITEBYTECODE in the caller's
  environment would otherwise make each run compile hlocal from source again.
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
sys.path.insert(0, str(ROOT))  # this checkout's hlocal, here and (PYTHONPATH, child_env) in every child
sys.path.insert(1, str(ROOT / "tests"))

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

# Issue 11: a config-only `hlocal reload` is live this soon after the command starts (Envoy's own
# part is ~0.055 s; the rest is hlocal's process start, imports and checks).
CONFIG_TARGET_S = 0.15


class BenchError(RuntimeError):
    pass


@dataclass
class Measurement:
    to_all_new: float | None  # seconds from t0; None: some request after the change still saw the old one
    trigger: float  # seconds from t0 until the trigger returned (hlocal exited / the raw swap was live)
    requests: int  # started from t0 on
    failed: int
    worst: float
    outage: float  # first to last failed request (0 when none failed)
    reported: float | None  # hlocal's own figure ("live in X s" / "up ... in X s")
    envoy_began: float | None  # seconds from t0 to Envoy's first Wasm log line for the change (native only)
    baseline_p50: float  # steady-state latency before t0, for context
    baseline_p99: float


def child_env(pycache: Path) -> dict[str, str]:
    """The environment of every hlocal process: this checkout's hlocal, its bytecode cached (in a temp
    dir), as in any installation.

    With PYTHONDONTWRITEBYTECODE each `hlocal` run would compile all its modules from source again.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    # Not the caller's cwd nor an installed copy: the hlocal under test is this checkout's.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


CHILD_ENV: dict[str, str] | None = None  # set once in main()


def run(argv: list[str], timeout: float = CMD_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=CHILD_ENV)
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

    def reload(self, env: dict[str, str] | None = None) -> float | None:
        global CHILD_ENV
        saved = CHILD_ENV
        CHILD_ENV = {**(CHILD_ENV or os.environ), **(env or {})}
        try:
            out = run([*self.hlocal, "reload"]).stdout
        finally:
            CHILD_ENV = saved
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
        from higress_local.wasm.module import add_custom_section

        self.count += 1
        return add_custom_section(self.builds[tag], "hlocal-bench", f"{os.getpid()}-{self.count}".encode())


WASM_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\].*\[wasm\].*"
                       r"(Base Wasm created|Thread-Local Wasm created)")


def envoy_began(log: Path, offset: int, t0_wall: float) -> float | None:
    """Seconds from t0 to the first Wasm VM Envoy created after it: where Envoy's own work on the change starts.

    A module swap logs "Base Wasm created" before compiling; a config swap creates a VM on the main thread.
    The gateway log's timestamps are local wall-clock time with millisecond resolution.
    """
    from datetime import datetime

    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        found = WASM_LINE.match(line)
        if found:
            at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if at >= t0_wall - 0.001:
                return max(at - t0_wall, 0.0)
    return None


def measure(stack: Stack, marker: str, is_new: Callable[[str | None], bool],
            trigger: Callable[[], float | None], tail: int) -> Measurement:
    """Run the load, trigger the change at t0, keep the load `tail` requests past the trigger's end."""
    log = stack.state_dir / "logs" / "gateway.log"  # the native runtime's; on docker it does not exist
    offset = log.stat().st_size if log.exists() else 0
    loop = LoadLoop(stack.port, threads=THREADS, marker_header=marker, max_seconds=LOAD_MAX_S)
    with loop:
        loop.wait_for_requests(WARMUP_REQUESTS, timeout=60)
        t0_wall, t0 = time.time(), time.monotonic()
        reported = trigger()
        trigger_seconds = time.monotonic() - t0
        loop.wait_for_requests(loop.result.total + tail, timeout=60)
    samples = loop.result.samples
    before = [s.seconds for s in samples if s.started < t0]
    window = LoadResult([s for s in samples if s.started >= t0])
    failed = window.failed
    outage = (max(s.started + s.seconds for s in failed) - min(s.started for s in failed)) if failed else 0.0
    return Measurement(to_all_new=window.first_time_all_new(is_new, since=t0),
                       trigger=trigger_seconds,
                       requests=window.total, failed=len(failed), worst=window.worst_latency, outage=outage,
                       reported=reported, envoy_began=envoy_began(log, offset, t0_wall) if offset else None,
                       baseline_p50=percentile(before, 0.5), baseline_p99=percentile(before, 0.99))


def wait_for_agent(stack: Stack, timeout: float = 60.0) -> None:
    """Until the agent `up` started answers: a reload before that is the CLI's."""
    from higress_local.agent.control import ping

    end = time.monotonic() + timeout
    while ping(stack.state_dir) is None:
        if time.monotonic() > end:
            raise BenchError(f"no reload agent answered within {timeout:.0f} s (see {stack.state_dir}/logs/agent.log)")
        time.sleep(0.05)


def agent_log_tail(stack: Stack, lines: int = 12) -> str:
    """The end of the agent's log: the bench's temp dir, and the log with it, is gone once it fails."""
    log = stack.state_dir / "logs" / "agent.log"
    return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else "(no agent.log)"


def agent_served(stack: Stack) -> int:
    log = stack.state_dir / "logs" / "agent.log"
    return log.read_text().count("reload served") if log.exists() else 0


def prepare_raw_swap(stack: Stack, version: str, module: bytes | None = None, x_version: str | None = None,
                     timeout: float = 60.0) -> Callable[[], None]:
    """The change without hlocal: a new module file and/or config, a new ECDS file renamed over the old one.

    Everything but the writes and the wait is done here, before t0.
    """
    layout = stack.state()["layout"]
    gateway_modules = Path(layout["modules"][PLUGIN]).parent  # the directory as the gateway sees it
    ecds = stack.state_dir / "ecds" / f"{PLUGIN}.json"
    doc = json.loads(ecds.read_text())
    config = doc["resources"][0]["typed_config"]["config"]
    module_file = stack.state_dir / "modules" / f"raw-{version}.wasm"
    if module is not None:
        config["vm_config"]["code"]["local"]["filename"] = str(gateway_modules / module_file.name)
    if x_version is not None:
        plugin_config = json.loads(config["configuration"]["value"])
        plugin_config["response_headers"]["x-version"] = x_version
        config["configuration"]["value"] = json.dumps(plugin_config, sort_keys=True, separators=(",", ":"))
    doc["version_info"] = version
    text = json.dumps(doc, indent=2)
    tmp = ecds.parent / f".{ecds.name}.raw.tmp"

    def swap() -> None:
        if module is not None:
            module_file.write_bytes(module)
        tmp.write_text(text)
        os.replace(tmp, ecds)
        end = time.monotonic() + timeout
        while stack.live_version() != version:  # the same completion rule hlocal uses
            if time.monotonic() > end:
                raise BenchError(f"Envoy did not take the raw ECDS swap to {version} within {timeout:.0f} s "
                                 f"(see {stack.state_dir / 'logs'})")
            time.sleep(0.02)

    return swap


SCENARIOS = {  # key: label in the table
    "config": "(a) config-only reload",
    "config_cli": "(a') config-only, agent off",
    "raw_config": "raw config swap (no hlocal)",
    "code": "(b) code reload",
    "raw_code": "raw module swap (no hlocal)",
    "restart": "(c) restart: down + up",
}


def bench(stack: Stack, runs: int, tail: int, restart_runs: int) -> tuple[dict[str, list[Measurement]], float]:
    from higress_local.wasm.module import adapt_for_stock_envoy

    modules = Modules()
    results: dict[str, list[Measurement]] = {name: [] for name in SCENARIOS}
    version, tag = 1, TAGS[0]
    stack.write_config(str(version))
    stack.write_wasm(modules.fresh(tag))
    stack.up()
    run([*stack.hlocal, "reload"])  # warms the bytecode cache of the reload path
    wait_for_agent(stack)

    def record(name: str, m: Measurement) -> None:
        results[name].append(m)
        new = f"{m.to_all_new:.3f} s" if m.to_all_new is not None else "never"
        rep = f", hlocal says {m.reported:.2f} s" if m.reported is not None else ""
        began = f"Envoy began after {m.envoy_began:.3f} s, " if m.envoy_began is not None else ""
        print(f"  {name:<10} all new after {new:>9} ({began}trigger done after {m.trigger:.3f} s), "
              f"{m.requests:6d} requests, {m.failed:5d} failed, worst {m.worst * 1000:6.1f} ms{rep}", flush=True)

    def is_value(wanted: str) -> Callable[[str | None], bool]:
        return lambda value: value == wanted

    noop = []
    for index in range(runs):
        print(f"run {index + 1}/{runs}", flush=True)
        hlocal_first = index % 2 == 0  # alternate, so that neither side always follows the other
        for name in ("config", "config_cli", "raw_config") if hlocal_first else ("raw_config", "config_cli", "config"):
            version += 1
            if name == "config":
                stack.write_config(str(version))
                served = agent_served(stack)
                record(name, measure(stack, "x-version", is_value(str(version)), stack.reload, tail))
                if agent_served(stack) != served + 1:
                    raise BenchError("the reload agent did not serve the reload; its log ends:\n" + agent_log_tail(stack))
            elif name == "config_cli":
                stack.write_config(str(version))
                record(name, measure(stack, "x-version", is_value(str(version)),
                                     lambda: stack.reload({"HLOCAL_NO_AGENT": "1"}), tail))
            else:
                swap = prepare_raw_swap(stack, f"raw-config-{index + 1}", x_version=str(version))
                record(name, measure(stack, "x-version", is_value(str(version)), swap, tail))
                stack.write_config(str(version))  # hlocal's state catches up (untimed; Envoy keeps its VM)
                stack.reload()
        for name in ("code", "raw_code") if hlocal_first else ("raw_code", "code"):
            tag = TAGS[1] if tag == TAGS[0] else TAGS[0]
            source = modules.fresh(tag)
            if name == "code":
                stack.write_wasm(source)
                record(name, measure(stack, "x-build", is_value(tag), stack.reload, tail))
            else:
                swap = prepare_raw_swap(stack, f"raw-code-{index + 1}", module=adapt_for_stock_envoy(source))
                record(name, measure(stack, "x-build", is_value(tag), swap, tail))
                stack.write_wasm(source)  # hlocal's state catches up (untimed; the same bytes: no new compile)
                stack.reload()

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

        record("restart", measure(stack, "x-version", is_value(want), restart, tail))
    return results, statistics.median(noop)


def report(results: dict[str, list[Measurement]], noop: float, runs: int, restart_runs: int) -> None:
    def med(name: str) -> float | None:
        times = [m.to_all_new for m in results[name]]
        return None if not times or None in times else statistics.median(times)

    def fmt(value: float | None) -> str:
        return "never" if value is None else f"{value:.3f} s"

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def med_of(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    print(f"\n{'scenario':<28} {'all new after':>13} {'Envoy began':>12} {'trigger done':>13} {'failed':>7} "
          f"{'worst':>9} {'outage':>8} {'hlocal says':>11} {'steady p50/p99':>15}")
    for name, label in SCENARIOS.items():
        ms = results[name]
        if not ms:
            continue
        reported = [m.reported for m in ms if m.reported is not None]
        steady = (f"{statistics.median(m.baseline_p50 for m in ms) * 1000:.1f}/"
                  f"{statistics.median(m.baseline_p99 for m in ms) * 1000:.1f} ms")
        began = med_of([m.envoy_began for m in ms])
        print(f"{label:<28} {fmt(med(name)):>13} {(fmt(began) if began is not None else '-'):>12} "
              f"{fmt(statistics.median(m.trigger for m in ms)):>13} "
              f"{sum(m.failed for m in ms):>7} {max(m.worst for m in ms) * 1000:>6.1f} ms "
              f"{max(m.outage for m in ms):>6.3f} s {(f'{statistics.median(reported):.2f} s' if reported else '-'):>11} "
              f"{steady:>15}")
    print(f"all new after / Envoy began / trigger done: median over {runs} runs ({restart_runs} for the restart) "
          "of the time from t0 to the first request after which every request sees the new version / to the "
          "first Wasm VM Envoy created for the change (gateway log, native only) / to the trigger's return. "
          "failed: sum; worst, outage: max; hlocal says: the median of its own figure "
          "(\"live in X s\" of `hlocal reload`, \"up in X s\" of `hlocal up`).")
    print(f"`hlocal reload` with nothing changed (process start, config, module check): {noop:.3f} s median")

    config, raw_config, config_cli = med("config"), med("raw_config"), med("config_cli")
    code, raw_code, restart = med("code"), med("raw_code"), med("restart")
    print()
    if code is not None and raw_code:
        print(f"code reload / raw module swap    {code / raw_code:6.2f} x   "
              f"(target <= 1.1 x: {verdict(code <= 1.1 * raw_code)})")
    else:
        print("code reload / raw module swap      n/a   (target <= 1.1 x: MISSED: a run never saw only the new version)")
    reported = [m.reported for m in results["config"] if m.reported is not None]
    own = statistics.median(reported) if reported else None
    print(f"config-only reload             {fmt(config):>8}   (target <= {CONFIG_TARGET_S} s after the command "
          f"starts: {verdict(config is not None and config <= CONFIG_TARGET_S)}; the raw config swap: "
          f"{fmt(raw_config)}; hlocal's own figure {fmt(own)}: {verdict(own is not None and own <= CONFIG_TARGET_S)})")
    if config is not None and config_cli:
        print(f"config-only reload, agent on / off {config / config_cli:5.2f} x   ({fmt(config)} vs {fmt(config_cli)})")
    if restart is not None and code:
        print(f"restart / code reload            {restart / code:6.2f} x")
    pre = {name: med_of([m.envoy_began for m in results[name]]) for name in ("config", "raw_config", "code", "raw_code")}
    if pre["code"] is not None and pre["raw_code"] is not None:
        # Envoy's compile time swings by seconds from run to run; what hlocal adds before it does not.
        print(f"before Envoy starts on the change: code reload {pre['code']:.3f} s vs raw {pre['raw_code']:.3f} s; "
              f"config reload {fmt(pre['config'])} vs raw {fmt(pre['raw_config'])}")
    failed_a = sum(m.failed for m in results["config"])
    failed_b = sum(m.failed for m in results["code"])
    print(f"failed requests in (a), (b)      {failed_a}, {failed_b}   (target 0 and 0: "
          f"{verdict(failed_a == 0 and failed_b == 0)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of (a), (b) and the raw swaps")
    parser.add_argument("--restart-runs", type=int, default=1, help="repetitions of (c)")
    parser.add_argument("--runtime", default="native", choices=["native", "docker"])
    parser.add_argument("--tail", type=int, default=300, help="requests after the trigger finished")
    args = parser.parse_args()

    global CHILD_ENV
    from higress_local.system.ports import free_port

    if args.runtime == "docker":
        from docker_images import ensure_test_images

        os.environ.update(ensure_test_images())
    load_before = os.getloadavg()[0]  # other work on the machine shows in every figure
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-reload-") as tmp:
        CHILD_ENV = child_env(Path(tmp) / "pycache")
        project = Path(tmp) / "project"
        project.mkdir()
        stack = Stack(project, args.runtime, free_port())
        try:
            results, noop = bench(stack, args.runs, args.tail, args.restart_runs)
        except (BenchError, AssertionError) as exc:  # AssertionError: the load loop got too few answers
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            stack.down()
            if (stack.state_dir / "state.json").exists():
                print(f"warning: {stack.state_dir} still has a stack state after `hlocal down`", file=sys.stderr)
    size = build_plugin(PLUGIN, DEFAULT_CACHE_DIR, ldflags=f"-X main.buildTag={TAGS[0]}").stat().st_size
    print(f"\nruntime: {args.runtime}, plugin: {PLUGIN} ({size:,} bytes), {THREADS} client threads on loopback, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    report(results, noop, args.runs, args.restart_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
