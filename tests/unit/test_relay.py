"""The Redis relay against a real redis-server: commands, errors, AUTH and db from Init, failures, limits."""

from __future__ import annotations

import ast
import http.client
import io
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from higress_local.relay import resp
from higress_local.relay.server import ERROR_HEADER, RelayServer, parse_init

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import wait_for  # noqa: E402

RELAY_DIR = Path(__file__).resolve().parents[2] / "higress_local" / "relay"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free port, with a user alice (password wonderland) besides default."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {tmp_path}\n"
                    "user alice on >wonderland ~* &* +@all\n")
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _redis_answers(port), 10, f"redis-server on port {port}")
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def relay(redis_server):
    server = RelayServer(0, ("127.0.0.1", redis_server), max_body=4096)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def post(relay: RelayServer, path: str, body: bytes) -> tuple[int, bytes, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", relay.server_address[1], timeout=10)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader(ERROR_HEADER)
    finally:
        conn.close()


def call(relay: RelayServer, *args: str) -> tuple[int, bytes, str | None]:
    return post(relay, "/hlocal-redis/call", resp.command(*args))


def init_body(user: str = "", password: str = "", timeout: int = 1000, cluster: str = "outbound|6379||r") -> bytes:
    return struct.pack("<III", len(user), len(password), timeout) + user.encode() + password.encode() + cluster.encode()


def test_set_get_incr_expire_round_trips(relay):
    assert call(relay, "SET", "k", "v") == (200, b"+OK\r\n", None)
    assert call(relay, "GET", "k") == (200, b"$1\r\nv\r\n", None)
    assert call(relay, "INCR", "n")[1] == b":1\r\n"
    assert call(relay, "INCR", "n")[1] == b":2\r\n"
    assert call(relay, "EXPIRE", "n", "60")[1] == b":1\r\n"
    assert call(relay, "GET", "missing")[1] == b"$-1\r\n"
    assert call(relay, "MGET", "k", "missing")[1] == b"*2\r\n$1\r\nv\r\n$-1\r\n"


def test_redis_errors_are_resp_errors_with_status_200(relay):
    status, body, error = call(relay, "NOSUCHCOMMAND")
    assert status == 200 and body.startswith(b"-ERR unknown command") and error is None
    call(relay, "SET", "s", "text")
    assert call(relay, "INCR", "s")[1].startswith(b"-ERR value is not an integer")


def test_init_credentials_and_db_apply_to_later_commands(relay, redis_server):
    assert post(relay, "/hlocal-redis/init", init_body("alice", "wonderland", 500,
                                                       "outbound|6379||r?db=3&buffer_flush_timeout=3"))[0] == 200
    assert call(relay, "SET", "in3", "yes")[1] == b"+OK\r\n"
    assert call(relay, "ACL", "WHOAMI")[1] == b"$5\r\nalice\r\n"
    direct = subprocess.run(["redis-cli", "-p", str(redis_server), "-n", "3", "GET", "in3"],
                            capture_output=True, text=True, check=True)
    assert direct.stdout.strip() == "yes"
    # Wrong credentials: the AUTH error is the command's answer, as Redis would give it.
    post(relay, "/hlocal-redis/init", init_body("alice", "wrong"))
    assert call(relay, "GET", "in3")[1].startswith(b"-WRONGPASS")


def test_parse_init_reads_options_and_defaults():
    auth = parse_init(init_body("u", "", 0, "outbound|1||h?db=5&max_buffer_size_before_flush=0"), "fromfile")
    assert (auth.username, auth.password, auth.db, auth.timeout_ms) == ("u", "fromfile", 5, 1000)
    with pytest.raises(ValueError):
        parse_init(b"\x01\x00")


def test_redis_down_is_a_clear_failure_with_an_empty_body(relay, redis_server):
    assert call(relay, "PING")[1] == b"+PONG\r\n"
    subprocess.run(["redis-cli", "-p", str(redis_server), "SHUTDOWN", "NOSAVE"], capture_output=True)
    wait_for(lambda: not _redis_answers(redis_server), 10, "redis-server to stop")
    status, body, error = call(relay, "PING")
    assert (status, body) == (502, b"")
    assert error and "redis" in error
    status, body, error = call(relay, "PING")  # a new connection is refused outright
    assert (status, body) == (502, b"") and "cannot connect to redis" in error


@pytest.mark.parametrize(("body", "needle"), [
    (b"PING\r\n", "must be a RESP array"),
    (b"*2\r\n$3\r\nGET\r\n", "incomplete RESP command"),
    (resp.command("PING") + b"extra", "bytes after the RESP command"),
])
def test_malformed_commands_are_rejected_without_reaching_redis(relay, body, needle):
    status, answer, error = post(relay, "/hlocal-redis/call", body)
    assert (status, answer) == (400, b"") and needle in error


def test_request_size_is_bounded(relay):
    status, body, error = call(relay, "SET", "big", "x" * 5000)
    assert (status, body) == (413, b"") and "exceeds the relay's limit of 4096" in error
    assert call(relay, "PING")[1] == b"+PONG\r\n"


def test_it_listens_on_loopback_only(relay):
    assert relay.server_address[0] == "127.0.0.1"


def test_concurrent_commands_each_get_their_own_reply(relay):
    results: dict[int, bytes] = {}

    def worker(i: int) -> None:
        call(relay, "SET", f"c{i}", str(i))
        results[i] = call(relay, "GET", f"c{i}")[1]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(20)}


def test_resp_reader_handles_nested_and_resp3_values():
    raw = b"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n%1\r\n+k\r\n,1.5\r\n"
    assert resp.read_value(io.BytesIO(raw + b"tail")) == raw
    with pytest.raises(resp.RespError):
        resp.read_value(io.BytesIO(b"?x\r\n"))


def test_command_line_runs_the_relay(redis_server, tmp_path):
    port = _free_port()
    password = tmp_path / "password"
    password.write_text("unused\n")
    process = subprocess.Popen([sys.executable, "-m", "higress_local.relay", "--port", str(port),
                                "--redis", f"127.0.0.1:{redis_server}", "--password-file", str(password)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=RELAY_DIR.parents[1])
    try:
        assert "relay listening on 127.0.0.1:" in process.stdout.readline()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()
        process.terminate()
        process.communicate(timeout=10)
        assert process.returncode == 0  # SIGTERM is a clean stop (system/serve.py)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_relay_uses_the_standard_library_only():
    allowed = set(sys.stdlib_module_names) | {"higress_local"}
    for path in RELAY_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_wiring_runs_the_relay_for_redis_services_on_stock_envoy_only(relay, tmp_path):
    from higress_local.relay import wiring
    from higress_local.system.wait import NotYet

    assert wiring.needs_relay("envoy", "redis") and not wiring.needs_relay("higress", "redis")
    assert not wiring.needs_relay("envoy", "fqdn")
    argv = wiring.relay_argv(7000, "127.0.0.1", 6379, tmp_path / "pw")
    assert argv[1:] == ["-m", "higress_local.relay", "--port", "7000", "--redis", "127.0.0.1:6379",
                        "--password-file", str(tmp_path / "pw")]
    wiring.relay_ready_check("cache", relay.server_address[1])  # answers: no exception
    with pytest.raises(NotYet, match="redis relay of service cache not answering"):
        wiring.relay_ready_check("cache", _free_port())


def test_native_redis_service_is_the_relay_running_redis_server(tmp_path):
    from higress_local.config.project import parse_project
    from higress_local.runtime.services import native_argv, plan_native

    project = parse_project({"name": "demo", "plugins": [], "services": [
        {"name": "cache", "kind": "redis", "host": "redis.internal", "port": 6379}]}, tmp_path / "hlocal.yaml")
    plan = plan_native(project, tmp_path)["cache"]
    assert plan.cluster == "outbound|6379||redis.internal"
    # The gateway's cluster points at the relay; readiness asks the relay, which PINGs redis-server.
    assert plan.address == "127.0.0.1" and plan.port == plan.control_port != plan.host_port
    argv = native_argv(plan)
    split = argv.index("--")
    assert argv[1:split] == ["-m", "higress_local.relay", "--port", str(plan.port),
                             "--redis", f"127.0.0.1:{plan.host_port}"]
    assert argv[split + 1].endswith("redis-server") and argv[split + 2:split + 4] == ["--port", str(plan.host_port)]


@pytest.fixture
def scripted_redis():
    """A socket server answering the Nth command it gets (on any connection) with replies[N]."""
    replies: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    lock = threading.Lock()

    def serve(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            while True:
                try:
                    resp.read_value(stream)
                except (OSError, EOFError, resp.RespError):
                    return
                with lock:
                    reply = replies.pop(0)
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    relay = RelayServer(0, ("127.0.0.1", server.getsockname()[1]))
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay, replies
    finally:
        relay.shutdown()
        relay.server_close()
        server.close()
        thread.join(10)


def test_a_malformed_reply_fails_the_call_and_stray_bytes_never_answer_the_next_command(scripted_redis):
    relay, replies = scripted_redis
    replies += [b"+first\r\n:99\r\n", b"?what\r\n", b"*1\r\n" * 70 + b":1\r\n", b"+fourth\r\n"]
    assert call(relay, "PING") == (200, b"+first\r\n", None)
    status, body, error = call(relay, "PING")  # not the stray :99 of the first connection
    assert (status, body) == (502, b"") and "malformed RESP" in error and "?what" in error
    status, body, error = call(relay, "PING")
    assert (status, body) == (502, b"") and "nested too deeply" in error
    assert call(relay, "PING") == (200, b"+fourth\r\n", None)
