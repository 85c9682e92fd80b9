"""Benchmark: 200 keep-alive connections through gateway + plugin to the mock, against the same
Envoy + plugin answering from a `direct_response` route, in one run; then the mock's memory after
five 60 MB POSTs.

One stack is rendered with `hlocal render` (native runtime, the transformer plugin from the
gpustack-higress-plugins wheel, adding a request header), and routes are added to its RDS file:
`/__direct` answers from Envoy itself with a body the size of the mock's echo, and `/__upstream`
goes to a bare reference Envoy (one worker, direct_response, same body) instead of the mock. Envoy
and the mock are started with the command lines `hlocal up` uses (the mock logs each request to a
file, as it does under `hlocal up`). Every route goes through the same listener, filter chain and
plugin: direct vs mock is the issue's comparison; upstream vs mock shows how the mock compares with
the fastest upstream there can be, i.e. how much of the gap is the cost of proxying at all.

The load generator runs in its own processes (default 2), each driving its share of the
connections with a selector loop on raw sockets (one request in flight per connection, keep-alive,
10 s per-request timeout: a longer stall counts as a failed request): python's http.client in
threads would itself be the bottleneck on 2 cores. The phases take turns (direct, mock, upstream,
direct, ... for --rounds) so none always runs on a warmer or quieter machine. The CPU time each
process used is printed, and per request: on a machine shared with other work the throughput
swings with the neighbours, while CPU per request barely moves, and on 2 cores it bounds what
each route can reach.

Traffic goes to 127.0.0.1 only; every loop is bounded in time.

The mock runs on uvloop when it is installed (as under `hlocal up`); `--mock-loop asyncio` runs it on
asyncio's own loop instead (HLOCAL_MOCK_LOOP), as in the docker runtime's plain python image.

    python bench/load.py [--connections 200] [--seconds 20] [--rounds 1] [--clients 2] [--mock-loop asyncio]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
HLOCAL = [sys.executable, "-m", "higress_local"]
REQUEST_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 120.0
BIG_POST_BYTES = 60 * 1000 * 1000
BIG_POSTS = 5
DIRECT_PATH = "/__direct"
UPSTREAM_PATH = "/__upstream"
MOCK_PATH = "/load/mock?x=1"


# --- load generator (runs in child processes) ---------------------------------------------------


@dataclass
class Outcome:
    """What one client process saw: latencies of good requests, failures by kind."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1


class _Conn:
    __slots__ = ("sock", "buf", "started", "need", "status")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buf = b""
        self.started = 0.0
        self.need = -1  # total bytes of head + body once the head is parsed
        self.status = 0


def _client(port: int, path: str, connections: int, seconds: float, results: multiprocessing.Queue) -> None:
    """Keep `connections` requests in flight for `seconds`; put an Outcome on `results`."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: hlocal-bench\r\n\r\n".encode()
    outcome = Outcome()
    selector = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(connections)]
    cpu0 = time.process_time()
    end = time.monotonic() + seconds

    def send(conn: _Conn) -> None:
        if conn.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            conn.sock = sock
            selector.register(sock, selectors.EVENT_WRITE, conn)
        else:
            selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        conn.buf, conn.need, conn.status = b"", -1, 0
        conn.started = time.monotonic()

    def drop(conn: _Conn, kind: str) -> None:
        outcome.fail(kind)
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    for conn in conns:
        send(conn)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        for key, events in selector.select(min(0.2, end - now)):
            conn = key.data
            if events & selectors.EVENT_WRITE:
                try:
                    conn.sock.sendall(request)  # small: fits the socket buffer at once
                except OSError:
                    drop(conn, "send error")
                    send(conn)
                    continue
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
                continue
            try:
                data = conn.sock.recv(262144)
            except OSError:
                data = b""
            if not data:
                drop(conn, "connection closed")
                send(conn)
                continue
            conn.buf += data
            if conn.need < 0:
                head_end = conn.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                head = conn.buf[:head_end].decode("latin-1").lower()
                conn.status = int(head[9:12])
                length = 0
                for line in head.split("\r\n")[1:]:
                    if line.startswith("content-length:"):
                        length = int(line[15:])
                conn.need = head_end + 4 + length
            if len(conn.buf) >= conn.need:
                latency = time.monotonic() - conn.started
                if conn.status == 200:
                    outcome.latencies.append(latency)
                else:
                    outcome.fail(f"status {conn.status}")
                send(conn)
        # Requests stuck past the timeout count as failed (a 15 s stall shows up here).
        now = time.monotonic()
        for conn in conns:
            if conn.sock is not None and now - conn.started > REQUEST_TIMEOUT_S:
                drop(conn, f"no reply in {REQUEST_TIMEOUT_S:.0f} s")
                send(conn)
    for conn in conns:
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
    outcome.cpu_seconds = time.process_time() - cpu0
    results.put(outcome)


@dataclass
class Phase:
    name: str
    seconds: float
    latencies: list[float]
    failures: dict[str, int]
    cpu: dict[str, float]  # process -> CPU seconds used during the phase

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def cpu_per_request(self) -> dict[str, float]:
        """Microseconds of CPU per completed request, per process and in all."""
        count = max(1, len(self.latencies))
        per = {key: seconds * 1e6 / count for key, seconds in self.cpu.items()}
        per["all"] = sum(per.values())
        return per


def run_phase(name: str, port: int, path: str, connections: int, seconds: float, clients: int,
              watched: dict[str, psutil.Process]) -> Phase:
    """Drive the load from `clients` processes; measure CPU of the watched processes meanwhile."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    shares = [connections // clients + (1 if i < connections % clients else 0) for i in range(clients)]
    before = {key: _cpu(proc) for key, proc in watched.items()}
    procs = [multiprocessing.Process(target=_client, args=(port, path, share, seconds, results)) for share in shares]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=seconds + REQUEST_TIMEOUT_S + 30) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    cpu = {key: _cpu(proc) - before[key] for key, proc in watched.items()}
    cpu["clients"] = sum(o.cpu_seconds for o in outcomes)
    failures: dict[str, int] = {}
    for outcome in outcomes:
        for kind, count in outcome.failures.items():
            failures[kind] = failures.get(kind, 0) + count
    latencies = [lat for o in outcomes for lat in o.latencies]
    return Phase(name, seconds, latencies, failures, cpu)


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its children (the mock runs under hlocal's supervisor)."""
    total = 0.0
    for each in [proc, *proc.children(recursive=True)]:
        try:
            times = each.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


# --- the stack ------------------------------------------------------------------------------------


def render_stack(workdir: Path) -> tuple[Path, int]:
    """`hlocal render` a transformer stack into workdir/out; return the directory and gateway port."""
    from higress_local.system.ports import free_port

    source = resources.files("gpustack_higress_plugins") / "plugins/transformer/2.0.0/plugin.wasm"
    shutil.copyfile(str(source), workdir / "plugin.wasm")
    port = free_port()
    (workdir / "hlocal.yaml").write_text(
        f"name: loadbench\nruntime: native\ngateway: {{port: {port}, log_level: warning}}\n"
        "plugins:\n  - name: plugin\n    wasm: plugin.wasm\n"
        "    config: {reqRules: [{operate: add, headers: [{key: x-bench, value: '1'}]}]}\n")
    out = workdir / "out"
    done = subprocess.run([*HLOCAL, "-f", str(workdir / "hlocal.yaml"), "render", "--runtime", "native",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=workdir)
    if done.returncode != 0:
        raise SystemExit(f"hlocal render failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return out, port


def add_bench_routes(out: Path, body_size: int, upstream_port: int) -> None:
    """Route DIRECT_PATH to a direct_response and UPSTREAM_PATH to the reference Envoy, before the mock's route.

    Written by rename, as hlocal writes its RDS/CDS files, so a running gateway picks it up.
    """
    routes_file = out / "xds" / "routes.json"
    doc = json.loads(routes_file.read_text())
    host = doc["resources"][0]["virtual_hosts"][0]
    host["routes"] = [r for r in host["routes"] if r["name"] not in ("direct", "upstream")]
    host["routes"][:0] = [
        {"name": "direct", "match": {"prefix": DIRECT_PATH},
         "direct_response": {"status": 200, "body": {"inline_string": filler(body_size)}},
         "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}]},
        {"name": "upstream", "match": {"prefix": UPSTREAM_PATH}, "route": {"cluster": "bench-upstream"}},
    ]
    doc["version_info"] = f"bench-{body_size}"
    _replace(routes_file, doc)
    clusters_file = out / "xds" / "clusters.json"
    clusters = json.loads(clusters_file.read_text())
    clusters["resources"] = [c for c in clusters["resources"] if c["name"] != "bench-upstream"]
    clusters["resources"].append(_cluster("bench-upstream", upstream_port))
    clusters["version_info"] = f"bench-{upstream_port}"
    _replace(clusters_file, clusters)


def filler(size: int) -> str:
    """A JSON document of exactly `size` bytes (at least 14)."""
    return json.dumps({"direct": "x" * max(0, size - 14)})


def _cluster(name: str, port: int) -> dict:
    return {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": name, "type": "STATIC",
            "connect_timeout": "2s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def _replace(path: Path, doc: dict) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(doc))
    os.replace(temp, path)


def upstream_bootstrap(path: Path, port: int, admin_port: int, body_size: int) -> None:
    """A bare Envoy answering every request itself: the fastest upstream there can be, for reference."""
    route = {"name": "all", "match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": filler(body_size)}},
             "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}]}
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                    ".HttpConnectionManager",
           "stat_prefix": "upstream", "codec_type": "AUTO",
           "route_config": {"name": "upstream", "virtual_hosts": [{"name": "all", "domains": ["*"],
                                                                    "routes": [route]}]},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    doc = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
           "static_resources": {"listeners": [{"name": "upstream", "address": {"socket_address": {
               "address": "127.0.0.1", "port_value": port}},
               "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                               "typed_config": hcm}]}]}]}}
    path.write_text(json.dumps(doc))


def body_of(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: hlocal-bench\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def wait_body_size(port: int, path: str, size: int) -> None:
    end = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < end:
        try:
            if len(body_of(port, path)) == size:
                return
        except OSError:
            pass
        time.sleep(0.05)  # polling a condition under a deadline
    raise SystemExit(f"{path} never answered with {size} bytes within {READY_TIMEOUT_S:.0f} s")


def backend_port(out: Path) -> int:
    clusters = json.loads((out / "xds" / "clusters.json").read_text())
    backend = next(c for c in clusters["resources"] if c["name"].endswith("||backend"))
    return backend["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
        "port_value"]


def wait_200(port: int, path: str) -> None:
    end = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling a condition under a deadline
    raise SystemExit(f"no 200 on port {port}{path} within {READY_TIMEOUT_S:.0f} s")


def big_posts(port: int, mock: psutil.Process) -> tuple[float, float, list[str]]:
    """RSS (MB) of the mock before and after BIG_POSTS POSTs of BIG_POST_BYTES straight to its port."""
    baseline = mock.memory_info().rss / 1e6
    block = hashlib.sha256(b"hlocal").digest() * 2048  # 64 KiB, not compressible, not all zeros
    replies = []
    for number in range(BIG_POSTS):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(f"POST /big/{number} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Length: {BIG_POST_BYTES}\r\nConnection: close\r\n\r\n".encode())
            left = BIG_POST_BYTES
            while left:
                piece = block[:min(left, len(block))]
                sock.sendall(piece)
                left -= len(piece)
            data = b""
            while chunk := sock.recv(1 << 20):
                data += chunk
        replies.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
    after = mock.memory_info().rss / 1e6
    return baseline, after, replies


def mock_loop(choice: str) -> str:
    """The event loop the mock runs on, as it chooses it (server.new_event_loop)."""
    if choice == "asyncio":
        return "asyncio (forced)"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio (uvloop not installed)"
    return "uvloop"


PHASES = (("direct", DIRECT_PATH), ("mock", MOCK_PATH), ("upstream", UPSTREAM_PATH))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the phases, in turn")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--no-upstream", action="store_true", help="skip the reference-Envoy upstream phase")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--mock-loop", choices=("auto", "asyncio"), default="auto",
                        help="the mock's event loop: uvloop when installed (auto), or asyncio's")
    args = parser.parse_args()
    if not (1 <= args.connections <= 2000 and 0 < args.seconds <= 300 and 1 <= args.rounds <= 10):
        parser.error("keep the load bounded: connections 1-2000, seconds <= 300, rounds <= 10")

    from higress_local.system.ports import free_port
    from higress_local.runtime.envoys import find_envoy

    envoy_bin = find_envoy()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="hlocal-loadbench-") as tmp:
        workdir = Path(tmp)
        out, port = render_stack(workdir)
        mock_port, upstream_port = backend_port(out), free_port()
        logs = out / "logs"

        def start(name: str, argv: list[str], **env: str) -> psutil.Process:
            with open(logs / f"{name}.log", "wb") as log:
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                                        env=dict(os.environ, **env))
            procs.append(proc)
            return psutil.Process(proc.pid)

        try:
            # As `hlocal up` runs the mock: request log on, to a file.
            mock = start("backend", [sys.executable, "-m", "higress_local.mock", "--name", "backend",
                                     "--port", str(mock_port), "--control-port", "0",
                                     "--config", str(out / "backend.json")],
                         PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT),
                         HLOCAL_MOCK_LOOP=args.mock_loop)
            wait_200(mock_port, "/ready")
            add_bench_routes(out, 64, upstream_port)
            envoy = start("gateway", [envoy_bin, "-c", str(out / "envoy.yaml"), "--disable-hot-restart",
                                      "--log-level", "warning", "--component-log-level", "wasm:debug",
                                      "--drain-time-s", "1", "--parent-shutdown-time-s", "2"])
            wait_200(port, MOCK_PATH)
            size = len(body_of(port, MOCK_PATH))  # the echo as it comes through the gateway
            add_bench_routes(out, size, upstream_port)
            wait_body_size(port, DIRECT_PATH, size)
            watched = {"envoy": envoy, "mock": mock}
            phases = [p for p in PHASES if not (args.no_upstream and p[0] == "upstream")]
            if not args.no_upstream:
                upstream_bootstrap(out / "upstream.json", upstream_port, free_port(), size)
                watched["upstream"] = start("upstream", [envoy_bin, "-c", str(out / "upstream.json"),
                                                         "--disable-hot-restart", "--concurrency", "1",
                                                         "--log-level", "warning"])
                wait_body_size(port, UPSTREAM_PATH, size)
            print(f"gateway 127.0.0.1:{port} (transformer plugin), {args.connections} connections x "
                  f"{args.seconds:.0f} s per phase, {args.clients} client processes, {size}-byte replies; "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; mock event loop: "
                  f"{mock_loop(args.mock_loop)}", flush=True)
            for _, path in phases:
                run_phase("warmup", port, path, args.connections, args.warmup, args.clients, watched)
            results: dict[str, list[Phase]] = {name: [] for name, _ in phases}
            for _ in range(args.rounds):
                for name, path in phases:
                    phase = run_phase(name, port, path, args.connections, args.seconds, args.clients, watched)
                    results[name].append(phase)
                    cpu = ", ".join(f"{k} {v:.1f}" for k, v in phase.cpu.items() if v >= 0.05)
                    per = ", ".join(f"{k} {v:.0f}" for k, v in phase.cpu_per_request().items() if v >= 1)
                    print(f"  {name:8} {phase.rps:8.0f} req/s  p50 {phase.pct(0.5):6.1f} ms  "
                          f"p99 {phase.pct(0.99):7.1f} ms  max {phase.pct(1.0):7.1f} ms  failed {phase.failed}"
                          f"{' ' + str(phase.failures) if phase.failures else ''}  (CPU s: {cpu}; "
                          f"CPU us/request: {per})", flush=True)
            report(results)
            if not args.skip_memory:
                before, after, replies = big_posts(mock_port, mock)
                growth = after - before
                print(f"\nmock RSS: {before:.1f} MB before, {after:.1f} MB after {BIG_POSTS} POSTs of "
                      f"{BIG_POST_BYTES / 1e6:.0f} MB (+{growth:.1f} MB; target <= +20 MB: "
                      f"{'met' if growth <= 20 else 'MISSED'}); replies: {sorted(set(replies))}")
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
    return 0


def report(results: dict[str, list[Phase]]) -> None:
    def median(name: str, value) -> float:
        return statistics.median(value(p) for p in results[name])

    d_rps, m_rps = median("direct", lambda p: p.rps), median("mock", lambda p: p.rps)
    d_p99, m_p99 = median("direct", lambda p: p.pct(0.99)), median("mock", lambda p: p.pct(0.99))
    failed = sum(p.failed for phases in results.values() for p in phases)
    print(f"\nmedians over {len(results['direct'])} round(s)")
    print(f"throughput ratio mock/direct   {m_rps / d_rps:5.2f} x  (target >= 0.70: "
          f"{'met' if m_rps / d_rps >= 0.7 else 'MISSED'})")
    print(f"p99 ratio        mock/direct   {m_p99 / d_p99:5.2f} x  (target <= 2.00: "
          f"{'met' if m_p99 / d_p99 <= 2 else 'MISSED'})")
    if "upstream" in results:
        u_rps, u_p99 = median("upstream", lambda p: p.rps), median("upstream", lambda p: p.pct(0.99))
        print(f"reference: a bare Envoy as the upstream gives {u_rps / d_rps:5.2f} x the direct throughput and "
              f"{u_p99 / d_p99:5.2f} x its p99 (the cost of proxying at all)")
        # Issue 20's targets: the mock against the fastest upstream there can be, same plugin chain.
        print(f"throughput ratio mock/upstream {m_rps / u_rps:5.2f} x  (target >= 0.90: "
              f"{'met' if m_rps / u_rps >= 0.9 else 'MISSED'})")
        print(f"p99 ratio        mock/upstream {m_p99 / u_p99:5.2f} x  (target <= 1.20: "
              f"{'met' if m_p99 / u_p99 <= 1.2 else 'MISSED'})")
        m_cpu = statistics.median(p.cpu_per_request().get("mock", 0.0) for p in results["mock"])
        u_cpu = statistics.median(p.cpu_per_request().get("upstream", 0.0) for p in results["upstream"])
        print(f"CPU per request  mock {m_cpu:.0f} us, bare-Envoy upstream {u_cpu:.0f} us  (target mock <= upstream: "
              f"{'met' if m_cpu <= u_cpu else 'MISSED'})")
    print(f"failed requests  {failed}  (target 0: {'met' if failed == 0 else 'MISSED'})")
    cost = {name: statistics.median(p.cpu_per_request()["all"] for p in phases) for name, phases in results.items()}
    print("CPU per request, all processes: " + ", ".join(f"{name} {us:.0f} us" for name, us in cost.items())
          + f"; on an otherwise idle machine (CPU-bound) mock/direct would reach about "
            f"{cost['direct'] / cost['mock']:.2f} x"
          + (f", a bare-Envoy upstream {cost['direct'] / cost['upstream']:.2f} x" if "upstream" in cost else ""))


if __name__ == "__main__":
    sys.exit(main())
