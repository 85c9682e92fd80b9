"""Fuzz hlocal's Redis relay from both sides (fixed seed, reproducible), over real sockets.

The relay runs as its own process (`python -m higress_local.relay`) in front of `FakeRedis`, a socket
server that answers each command ``ECHO <case>`` with the reply case `<case>` prescribes: well-formed
RESP of every type, or truncated, oversized, untyped, too deep, trailing bytes, a hang-up, silence.
Client-side cases send the relay garbage HTTP, bad headers, truncated bodies and malformed RESP
commands. Every exchange has a deadline. Expected: a well-formed reply comes back byte for byte
with 200; everything else is refused with a status (400/404/408/411/413/501/502...) or, for bytes
that are no HTTP request at all, a closed connection; no traceback ever reaches the client or the
relay's stderr, and the relay is alive at the end.
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from higress_local.relay.resp import RespError, command, one_command, read_value

EXCHANGE_DEADLINE_S = 10.0
REDIS_TIMEOUT_MS = 500  # the relay's Redis timeout for these cases (set through /hlocal-redis/init); 150 ms was too short for a valid reply on a loaded CI machine
SERVER_KINDS = ("valid", "valid", "valid", "truncated", "bad-type", "bad-length", "huge-length", "too-deep",
                "no-crlf", "hang-up", "trailing-bytes", "silent")
CLIENT_KINDS = ("garbage", "request-line", "headers", "truncated-body", "resp-command", "init", "method-path")


# -- well-formed and malformed RESP -------------------------------------------------------------------


def random_value(rng: random.Random, depth: int = 0) -> bytes:
    """A well-formed RESP2/RESP3 value."""
    kind = rng.choice("+-:$$_*#,(~%" if depth < 4 else "+-:$_#,(")
    if kind in "+-":
        return kind.encode() + bytes(rng.choice(b"abcXYZ 019:-") for _ in range(rng.randrange(12))) + b"\r\n"
    if kind == ":":
        return b":%d\r\n" % rng.randrange(-2**63, 2**63)
    if kind == "$":
        if rng.random() < 0.2:
            return b"$-1\r\n"
        blob = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 5, 300))))  # \r\n inside too
        return b"$%d\r\n%s\r\n" % (len(blob), blob)
    if kind in "_#,(":
        return {"_": b"_\r\n", "#": b"#t\r\n", ",": b",3.25\r\n", "(": b"(123456789012345678901234567890\r\n"}[kind]
    if kind == "*" and rng.random() < 0.15:
        return b"*-1\r\n"
    count = rng.randrange(4)
    items = count * (2 if kind == "%" else 1)
    return b"%s%d\r\n" % (kind.encode(), count) + b"".join(random_value(rng, depth + 1) for _ in range(items))


def server_case(seed: int, index: int) -> tuple[str, bytes, bytes | None, str]:
    """(kind, bytes FakeRedis sends, the reply the relay must pass on (None: a 502), after: close|stay)."""
    rng = random.Random(f"redis:{seed}:{index}")
    kind = SERVER_KINDS[index % len(SERVER_KINDS)]
    value = random_value(rng)
    if kind == "valid":
        return kind, value, value, "stay"
    if kind == "trailing-bytes":
        return kind, value + random_value(rng), value, "stay"
    if kind == "truncated":
        return kind, value[:rng.randrange(len(value))], None, rng.choice(("close", "stay"))
    if kind == "bad-type":
        return kind, bytes([rng.choice(b"!@^&?xA0\x00\xff")]) + b"1\r\n", None, "stay"
    if kind == "bad-length":
        bad = rng.choice([b"$abc\r\n", b"*x\r\n", b"$2\r\nabcd\r\n", b"$\r\n", b"*1.5\r\n", b"%-\r\n",
                          b"$3\r\nab", b"\r\n"])
        return kind, bad, None, "close"
    if kind == "huge-length":
        return kind, rng.choice([b"$536870913\r\n", b"*2147483647\r\n:1\r\n", b"$99999999999999999999\r\n",
                                 b"$1000000\r\nshort"]), None, "close"
    if kind == "too-deep":
        return kind, b"*1\r\n" * rng.randrange(66, 400) + b":1\r\n", None, "stay"
    if kind == "no-crlf":
        return kind, rng.choice([b"+OK\n", b":1\r", b"+" + b"a" * 70000 + b"\r\n"]), None, "close"
    if kind == "hang-up":
        return kind, b"", None, "close"
    return kind, b"", None, "stay"  # silent: the relay must give up after its timeout


class FakeRedis:
    """A socket server speaking just enough RESP: ``ECHO <case>`` gets that case's bytes."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        stream = conn.makefile("rb")
        try:
            while True:
                request = read_value(stream)
                if b"ECHO" not in request:  # AUTH, SELECT, PING ...
                    conn.sendall(b"+OK\r\n")
                    continue
                index = int(request.rsplit(b"\r\n", 2)[-2])
                _, sent, _, after = server_case(self.seed, index)
                conn.sendall(sent)
                if after == "close":
                    return
        except (OSError, EOFError, RespError, ValueError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


# -- client side --------------------------------------------------------------------------------------


def http_post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nhost: relay\r\ncontent-length: %d\r\n%s\r\n" % (path.encode(), len(body), extra)
            + body)


def init_body(timeout_ms: int, cluster: bytes = b"outbound|6379||fake?db=0", user: bytes = b"",
              password: bytes = b"") -> bytes:
    return struct.pack("<III", len(user), len(password), timeout_ms) + user + password + cluster


def _mutate_command(rng: random.Random) -> bytes:
    good = command("GET", "k" * rng.randrange(1, 20))
    choice = rng.randrange(8)
    if choice == 0:
        return good[:rng.randrange(len(good))]
    if choice == 1:
        return rng.choice([b"*999999999\r\n", b"*2\r\n$999999999\r\nx\r\n", b"*1\r\n$-7\r\n", b"*-1\r\n"])
    if choice == 2:
        return b"*1\r\n" * rng.randrange(60, 120) + b"$1\r\nx\r\n"
    if choice == 3:
        return good + rng.choice([b"x", b"*1\r\n$4\r\nPING\r\n", b"\r\n"])
    if choice == 4:
        return rng.choice([b"+PING\r\n", b"PING\r\n", b"", b"\x00" * 8, b"GET k\r\n"])
    if choice == 5:
        out = bytearray(good)
        out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if choice == 6:
        return rng.choice([b"*1\r\n:5\r\n", b"*1\r\n*0\r\n", b"*0\r\n"])  # well-formed, odd commands
    return good


def client_case(seed: int, index: int) -> tuple[str, bytes]:
    """(kind, raw bytes a client sends to the relay) for client-side case `index`."""
    rng = random.Random(f"client:{seed}:{index}")
    kind = CLIENT_KINDS[index % len(CLIENT_KINDS)]
    if kind == "garbage":
        return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == "request-line":
        return kind, rng.choice([b"POST\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /x HTTP/1.1 extra\r\n\r\n",
                                 b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\n"])
    if kind == "headers":
        length = rng.choice([b"-5", b"abc", b"1e3", b"99999999999999999999", b" 4 ", b"\xd9\xa4", b"4, 4", b""])
        extra = rng.choice([b"content-length: %s\r\n" % length, b"transfer-encoding: chunked\r\n",
                            b"no colon here\r\n", b"x: " + b"v" * 70000 + b"\r\n"])
        head = b"POST /hlocal-redis/call HTTP/1.1\r\nhost: relay\r\n" + extra + b"\r\n"
        return kind, head + b"4\r\nPING\r\n0\r\n\r\n"
    if kind == "truncated-body":
        body = command("ECHO", "x")
        return kind, http_post("/hlocal-redis/call", body)[:-rng.randrange(1, len(body))]
    if kind == "resp-command":
        return kind, http_post("/hlocal-redis/call", _mutate_command(rng))
    if kind == "init":
        body = init_body(rng.choice((0, 150, 2**32 - 1)), rng.choice([b"c?db=1", b"c?db=x", b"c?db=-1", b"\xff"]),
                         rng.choice([b"", b"\xff\xfe", b"user"]), b"")
        body = rng.choice([body, body, body[:rng.randrange(12)], struct.pack("<III", 2**31, 2**31, 0) + b"x"])
        return kind, http_post("/hlocal-redis/init", body)
    return kind, rng.choice([b"PUT /hlocal-redis/call HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
                             b"GET /hlocal-redis/call HTTP/1.1\r\n\r\n", http_post("/nope", b"x"),
                             b"DELETE / HTTP/1.1\r\n\r\n", b"GET /health HTTP/1.0\r\n\r\n"])


# -- running exchanges --------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: the relay closed the connection without answering; 0: HTTP/0.9
    headers: dict[str, str]
    body: bytes
    raw: bytes


def exchange(port: int, raw: bytes, deadline_s: float = EXCHANGE_DEADLINE_S) -> Answer:
    """Send `raw`, close our side, read until the relay closes; TimeoutError past the deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as sock:
        end = time.monotonic() + deadline_s
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the relay refused early and closed (e.g. a line too long): read its answer
            pass
        chunks = []
        while True:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise TimeoutError(f"no end of answer within {deadline_s} s") from None
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        return Answer(None, {}, b"", data)
    if not data.startswith(b"HTTP/"):  # an HTTP/0.9 request ("GET /x") gets a bare body
        return Answer(0, {}, data, data)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers[key.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return Answer(status, headers, rest[:int(headers.get("content-length", len(rest)))], data)


def _client_expectation(kind: str, raw: bytes) -> set[int | None]:
    """Statuses acceptable for a client-side case (None: closed without an answer)."""
    refused = {None, 0} | set(range(400, 600))
    if kind in ("resp-command", "init"):
        body = raw.partition(b"\r\n\r\n")[2]
        try:
            if kind == "init":
                from higress_local.relay.server import parse_init
                parse_init(body)
            else:
                one_command(body)
        except (RespError, ValueError, UnicodeDecodeError):
            return {400}
        return {200, 502} if kind == "resp-command" else {200}
    if kind == "truncated-body":
        return {400}
    if kind == "method-path":
        return {200, 404, 501}
    return refused


@dataclass
class RelayReport:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)  # (side:kind, status)
    problems: list[tuple[str, int, str, str]] = field(default_factory=list)  # side, index, kind, what

    def add(self, side: str, index: int, kind: str, status: int | None, problem: str = "") -> None:
        self.cases += 1
        self.outcomes[f"{side}:{kind}", status] += 1
        if problem:
            self.problems.append((side, index, kind, problem))


def _check(answer: Answer, allowed: set[int | None]) -> str:
    if b"Traceback" in answer.raw or b'File "' in answer.raw:
        return f"a traceback reached the client: {answer.raw[:300]!r}"
    if answer.status not in allowed:
        return f"status {answer.status}, expected one of {sorted(allowed, key=str)}: {answer.raw[:200]!r}"
    return ""


def run_server_case(port: int, seed: int, index: int, report: RelayReport) -> None:
    kind, _, expected, _ = server_case(seed, index)
    try:
        answer = exchange(port, http_post("/hlocal-redis/call", command("ECHO", str(index))))
    except TimeoutError as exc:
        report.add("redis", index, kind, None, f"hang: {exc}")
        return
    problem = _check(answer, {200} if expected is not None else {502})
    if not problem and expected is not None and answer.body != expected:
        problem = f"reply {answer.body[:80]!r} differs from what Redis sent {expected[:80]!r}"
    if not problem and expected is None and not answer.headers.get("x-hlocal-redis-error"):
        problem = "a failed call without the reason header"
    report.add("redis", index, kind, answer.status, problem)


def run_client_case(port: int, seed: int, index: int, report: RelayReport) -> None:
    kind, raw = client_case(seed, index)
    try:
        answer = exchange(port, raw)
    except TimeoutError as exc:
        report.add("client", index, kind, None, f"hang: {exc}")
        return
    report.add("client", index, kind, answer.status, _check(answer, _client_expectation(kind, raw)))
    if kind == "init":  # put back the short Redis timeout the server cases rely on
        exchange(port, http_post("/hlocal-redis/init", init_body(REDIS_TIMEOUT_MS)))


class RelayProcess:
    """`python -m higress_local.relay` on a free port, its stderr kept in a file."""

    def __init__(self, redis_port: int, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "higress_local.relay", "--port", "0", "--redis", f"127.0.0.1:{redis_port}"],
            stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True)
        line = self.process.stdout.readline().decode()  # "relay listening on 127.0.0.1:PORT for ..."
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"relay did not start: {line!r} {stderr_path.read_text()[-500:]}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._stderr.close()


def fuzz_relay(seed: int, count: int, workdir: Path) -> tuple[RelayReport, str, int | None]:
    """`count` cases, alternating server-side and client-side; (report, relay stderr, relay exit code
    if it died)."""
    fake = FakeRedis(seed)
    relay = RelayProcess(fake.port, workdir / "relay-stderr.log")
    report = RelayReport()
    try:
        exchange(relay.port, http_post("/hlocal-redis/init", init_body(REDIS_TIMEOUT_MS)))
        for index in range(count):
            (run_server_case if index % 2 == 0 else run_client_case)(relay.port, seed, index // 2, report)
        died = relay.process.poll()
    finally:
        relay.stop()
        fake.close()
    return report, relay.stderr(), died
