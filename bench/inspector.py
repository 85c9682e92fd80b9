"""Benchmark: gateway throughput and p99 latency with the request inspector's capture on vs off.

One project (the `headers` test plugin adding a request and a response header), started natively
twice per round, once as is and once with `gateway.inspect: true` (Envoy's two tap filters streaming
to the collector over the admin port, sampled under load; the collector turns them into records).
Each start takes the same loopback load for `--seconds`: `wrk` with `--connections` keep-alive
connections when it is installed, else tests/load.py (`--threads` client threads, one connection
each); rounds alternate which goes first. After each capture run the bench waits (with a deadline)
until the collector has nothing pending, and reports what it recorded, the requests it counted as
not captured (the sample), the ring's size on disk and the collector's memory and CPU.

Targets (issue 20): throughput with capture >= 0.8x, p99 <= 1.5x, at 200 connections.

    python bench/inspector.py [--rounds 2] [--seconds 10] [--connections 200] [--threads 4]

HLOCAL_BENCH_PYSPY=FILE records where the collector spends its CPU during each capture run (py-spy's
raw format) when `py-spy` is on PATH.
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's `inspect`, and Python puts the script's folder first
# on sys.path: take it off before anything imports `inspect` (dataclasses does).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from load import LoadLoop  # noqa: E402
from plugin_build import DEFAULT_CACHE_DIR, build_plugin  # noqa: E402


def up(project_dir: Path, capture: bool) -> None:
    """`hlocal up` with `gateway.inspect` on or off: with it, the runtime adds the taps and starts the collector."""
    config_file = project_dir / "hlocal.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["gateway"]["inspect"] = capture
    config_file.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "higress_local", "-f", str(project_dir), "up"],
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise SystemExit(f"hlocal up failed:\n{done.stdout}{done.stderr}")


def down(project_dir: Path) -> None:
    subprocess.run([sys.executable, "-m", "higress_local", "-f", str(project_dir), "down"], check=True,
                   capture_output=True, timeout=120)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: float, connections: int) -> dict:
    """`wrk` against the gateway: requests per second, p99 and failures (non-2xx and socket errors)."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency", f"http://127.0.0.1:{port}/bench"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    total = re.search(r"(\d+) requests in", out)
    if p99 is None or total is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    failed = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", out))
    return {"requests": int(total.group(1)), "failed": failed,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p99_ms": float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]}


def python_load(port: int, seconds: float, threads: int) -> dict:
    loop = LoadLoop(port, path="/bench", threads=threads, max_seconds=seconds + 30)
    started = time.monotonic()
    loop.start()
    while time.monotonic() - started < seconds:
        time.sleep(0.1)  # the measuring window, not synchronisation
    result = loop.stop()
    elapsed = time.monotonic() - started
    ok = [s.seconds for s in result.samples if s.status == 200]
    return {"requests": result.total, "failed": len(result.failed), "rps": len(ok) / elapsed,
            "p50_ms": statistics.median(ok) * 1000, "p99_ms": statistics.quantiles(ok, n=100)[98] * 1000}


def measure(project_dir: Path, capture: bool, seconds: float, threads: int, connections: int) -> dict:
    from higress_local.config.project import load_project
    from higress_local.inspect.store import CAPTURE_FILE, Store
    from higress_local.inspect.view import store_dir, taps_dir
    from higress_local.runtime import require_running

    up(project_dir, capture)
    project = load_project(project_dir / "hlocal.yaml")
    state = require_running(project)
    collector = None
    if capture:  # started by the runtime under its supervisor, whose status file names the program's pid
        collector = json.loads(Path(state.components["inspector"].status_file).read_text())["pid"]
    try:
        with LoadLoop(state.gateway_port, path="/bench", threads=threads, max_seconds=5) as warm:
            warm.wait_for_requests(200)
        spy = None
        if collector is not None and os.environ.get("HLOCAL_BENCH_PYSPY"):
            spy = subprocess.Popen(["py-spy", "record", "-p", str(collector), "-d", str(int(seconds)), "-f", "raw",
                                    "-o", os.environ["HLOCAL_BENCH_PYSPY"], "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if connections and shutil.which("wrk"):
            row = {"capture": capture, **wrk(state.gateway_port, seconds, connections)}
        else:
            row = {"capture": capture, **python_load(state.gateway_port, seconds, threads)}
        row["load_avg"] = os.getloadavg()[0]
        if spy is not None:
            spy.wait(timeout=60)
        if collector is not None:
            ended = time.time()
            stats_file = store_dir(project.state_dir).parent / CAPTURE_FILE
            stats: dict = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
                if stats.get("time", 0) > ended + 1 and stats.get("pending") == 0:
                    break
                time.sleep(0.2)  # polling the collector's stats file, under the deadline above
            store = Store(store_dir(project.state_dir))
            taps = taps_dir(project.state_dir)
            row.update(drain_s=round(time.time() - ended, 1), files_in_taps=len(list(taps.glob("*.json"))),
                       recorded=stats.get("recorded"), not_captured=stats.get("not_captured"),
                       skipped=stats.get("skipped"), kept=len(store.ids()), ring_mb=round(store.disk_bytes() / 1e6, 2),
                       collector_rss_mb=round(rss_mb(collector), 1), collector_cpu_s=round(cpu_seconds(collector), 1))
        return row
    finally:
        keep = os.environ.get("HLOCAL_BENCH_KEEP_TAPS")
        if keep and capture:  # for profiling the collector: its stats, records and the logs it read
            shutil.copytree(project.state_dir / "inspect", Path(keep) / "inspect", dirs_exist_ok=True)
            shutil.copytree(project.state_dir / "logs", Path(keep) / "logs", dirs_exist_ok=True)
        down(project_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4, help="without wrk: client threads")
    parser.add_argument("--connections", type=int, default=200, help="wrk's connections (0: use --threads)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores, "
          f"{'wrk -c' + str(args.connections) if args.connections and shutil.which('wrk') else f'{args.threads} threads'}")
    wasm = build_plugin("headers", DEFAULT_CACHE_DIR)
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-inspect-") as tmp:
        project_dir = Path(tmp)
        (project_dir / "headers.wasm").write_bytes(wasm.read_bytes())
        (project_dir / "hlocal.yaml").write_text(yaml.safe_dump({
            "name": "bench-inspect", "runtime": "native", "gateway": {"port": 0, "log_level": "warning",
                                                                       "wasm_log_level": "info"},
            "plugins": [{"name": "headers", "wasm": "headers.wasm",
                         "config": {"request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"}}}]}))
        rows = []
        for index in range(args.rounds):
            for capture in ((False, True) if index % 2 == 0 else (True, False)):
                row = measure(project_dir, capture, args.seconds, args.threads, args.connections)
                rows.append(row)
                print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
    off = [r for r in rows if not r["capture"]]
    on = [r for r in rows if r["capture"]]
    rps = statistics.mean(r["rps"] for r in on) / statistics.mean(r["rps"] for r in off)
    p99 = statistics.mean(r["p99_ms"] for r in on) / statistics.mean(r["p99_ms"] for r in off)
    print(f"\ncapture on / off: throughput {rps:.2f}x (target >= 0.8), p99 {p99:.2f}x (target <= 1.5)")
    print(f"failed requests: off {sum(r['failed'] for r in off)}, on {sum(r['failed'] for r in on)}")
    return 0 if rps >= 0.8 and p99 <= 1.5 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
