"""Benchmark: `hlocal up` -> first proxied 200, against raw `envoy -c` on the same rendered files.

Both are started the same way in this one process (mock backend + Envoy, then poll a request
through the gateway until it answers 200); the medians and their ratio are printed, with the
target from the issue (hlocal <= 1.15 x raw + 0.5 s). Also `hlocal --help` wall time, side by side with
the same command from a baseline commit (a temporary git worktree), in alternating rounds.

    python bench/up.py [--runs 5] [--plugin transformer|logger] [--baseline REF] [--help-only]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import os
import resource
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

HLOCAL = [sys.executable, "-m", "higress_local"]
ROOT = Path(__file__).resolve().parents[1]
BASELINE = "e1785b7^"  # the commit before the package was reorganised into packages by concern (issue 19)


def first_200(port: int, timeout: float = 120.0) -> float:
    """Seconds (monotonic clock) at which a request through the gateway first answered 200."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"no 200 from port {port} within {timeout} s")


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def plugin_file(name: str, workdir: Path) -> Path:
    if name == "transformer":
        source = resources.files("gpustack_higress_plugins") / "plugins/transformer/2.0.0/plugin.wasm"
        target = workdir / "plugin.wasm"
        shutil.copyfile(str(source), target)
        return target
    sys.path.insert(0, str(ROOT / "tests"))
    from plugin_build import DEFAULT_CACHE_DIR, build_plugin

    target = workdir / "plugin.wasm"
    shutil.copyfile(build_plugin(name, DEFAULT_CACHE_DIR), target)
    return target


def hlocal_up(project: Path, port: int) -> float:
    start = time.monotonic()
    run([*HLOCAL, "-f", str(project), "up"])
    ready = first_200(port)
    return ready - start


def raw_up(state_dir: Path, port: int, envoy: str) -> float:
    """The same rendered bootstrap and ECDS files, the same mock, started by hand."""
    backend = json.loads((state_dir / "state.json").read_text())
    start = time.monotonic()
    mock = subprocess.Popen([sys.executable, "-m", "higress_local.mock", "--port", str(backend["backend_port"]),
                             "--control-port", str(backend["control_port"]), "--config",
                             str(state_dir / "backend.json"), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proxy = subprocess.Popen([envoy, "-c", str(state_dir / "envoy.yaml"), "--disable-hot-restart",
                              "--log-level", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return first_200(port) - start
    finally:
        for proc in (proxy, mock):
            proc.terminate()
            proc.wait(timeout=30)


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    run(argv, env=env, cwd=tempfile.gettempdir())  # not ROOT: the checkout must come from PYTHONPATH only
    return time.monotonic() - start


def help_time(runs: int) -> tuple[float, float]:
    cli = statistics.median(_timed([*HLOCAL, "--help"], _tree_env(ROOT)) for _ in range(runs))
    bare = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    return cli, bare


def _tree_env(tree: Path) -> dict[str, str]:
    """The environment in which `python -m higress_local` imports the package from `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    found = run([sys.executable, "-c", "import higress_local; print(higress_local.__file__)"],
                env=env, cwd=tempfile.gettempdir()).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"with PYTHONPATH={tree}, higress_local comes from {found}")
    return env


@contextmanager
def worktree(ref: str):
    """A detached git worktree of `ref` in a temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="hlocal-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref])
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def _cpu_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the CPU seconds (user + system) the command used: on a machine shared with other
    work the wall time swings with the neighbours, the CPU time barely."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def help_against_baseline(ref: str, rounds: int) -> None:
    """`--help` of this checkout and of `ref`, alternating which goes first, so drift hits both alike."""
    with worktree(ref) as tree:
        envs = {"this": _tree_env(ROOT), ref: _tree_env(tree)}
        for env in envs.values():  # warm the bytecode caches of both trees before timing
            _timed([*HLOCAL, "--help"], env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
        for index in range(rounds):
            order = list(envs) if index % 2 == 0 else list(reversed(envs))
            for name in order:
                times[name].append(_cpu_timed([*HLOCAL, "--help"], envs[name]))
    print(f"\nhlocal --help, {rounds} alternating rounds, median (quartiles); load average {os.getloadavg()[0]:.1f}:")
    for column, what in ((0, "wall"), (1, "CPU")):
        series = {name: [t[column] for t in runs] for name, runs in times.items()}
        for name, label in (("this", "this checkout"), (ref, ref)):
            low, mid, high = statistics.quantiles(series[name], n=4)
            print(f"  {what:<4} {label:<14} {mid:6.3f} s   ({low:.3f} .. {high:.3f})")
        this, base = statistics.median(series["this"]), statistics.median(series[ref])
        verdict = "met" if this <= base else f"slower by {1000 * (this - base):.1f} ms; compare with the quartiles"
        print(f"  {what:<4} ratio          {this / base:6.3f} x   (target: no slower than the baseline: {verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plugin", default="transformer", choices=["transformer", "logger", "headers"])
    parser.add_argument("--baseline", default=BASELINE, help="git ref whose `--help` is timed beside this checkout's")
    parser.add_argument("--help-rounds", type=int, default=20)
    parser.add_argument("--help-only", action="store_true", help="time only `--help` against the baseline")
    args = parser.parse_args()
    if args.help_only:
        help_against_baseline(args.baseline, args.help_rounds)
        return 0

    from higress_local.system.ports import free_port
    from higress_local.runtime.envoys import find_envoy

    envoy = find_envoy()
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-") as tmp:
        project = Path(tmp)
        plugin_file(args.plugin, project)
        port = free_port()
        (project / "hlocal.yaml").write_text(
            f"name: bench\nruntime: native\ngateway: {{port: {port}, log_level: warning}}\n"
            "plugins:\n  - name: plugin\n    wasm: plugin.wasm\n"
            "    config: {reqRules: [{operate: add, headers: [{key: x-bench, value: '1'}]}]}\n")
        state_dir = project / ".hlocal" / "bench"
        hlocal_times, raw_times = [], []
        try:
            for index in range(args.runs):
                hlocal_times.append(hlocal_up(project, port))
                # Keep the rendered files (and ports) of this run for the raw start.
                kept = project / "kept"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(state_dir, kept)
                run([*HLOCAL, "-f", str(project), "down"])
                shutil.rmtree(state_dir, ignore_errors=True)
                shutil.copytree(kept, state_dir)
                raw_times.append(raw_up(state_dir, port, envoy))
                print(f"run {index + 1}: hlocal {hlocal_times[-1]:.2f} s, raw {raw_times[-1]:.2f} s", flush=True)
        finally:
            subprocess.run([*HLOCAL, "-f", str(project), "down"], capture_output=True)

    hl, raw = statistics.median(hlocal_times), statistics.median(raw_times)
    target = 1.15 * raw + 0.5
    print(f"\nplugin: {args.plugin} ({args.runs} runs each, median, up -> first proxied 200)")
    print(f"  raw envoy -c   {raw:6.2f} s")
    print(f"  hlocal up      {hl:6.2f} s")
    print(f"  ratio          {hl / raw:6.2f} x   (target: <= 1.15 x raw + 0.5 s = {target:.2f} s: "
          f"{'met' if hl <= target else 'MISSED'})")
    cli, bare = help_time(max(args.runs, 5))
    print(f"\nhlocal --help   {cli:6.3f} s   (python -c pass: {bare:.3f} s; ratio {cli / bare:.2f} x; "
          f"target <= 0.25 s: {'met' if cli <= 0.25 else 'MISSED'})")
    help_against_baseline(args.baseline, args.help_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
