"""``python -m higress_local.relay --port P --redis HOST:PORT [--password-file F] [-- COMMAND...]``

With a COMMAND (hlocal's native runtime passes redis-server's command line) the relay runs it as
its child for its own lifetime: one component, one process group, stopped together; when the
child exits, so does the relay, with the child's exit status, so the stack sees Redis die.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
from pathlib import Path

from ..system.serve import serve_until_stopped
from .server import DEFAULT_MAX_BODY, RelayServer


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m higress_local.relay",
                                     description="hlocal's Redis relay: HTTP on 127.0.0.1 in front of redis-server")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: pick one)")
    parser.add_argument("--redis", type=_address, required=True, help="HOST:PORT of redis-server")
    parser.add_argument("--password-file", type=Path,
                        help="password to AUTH with when the plugin's Init gives none")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest command in bytes")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="after --: a program to run beside the relay (e.g. redis-server ...)")
    args = parser.parse_args(argv)
    child_argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    password = ""
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            parser.error(f"cannot read --password-file {args.password_file}: {exc.strerror}")
    try:
        server = RelayServer(args.port, args.redis, password=password, max_body=args.max_body)
    except OSError as exc:
        print(f"relay: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 3
    child = None
    ended: list[int] = []  # the child's exit status, when it ended on its own
    if child_argv:
        try:
            child = subprocess.Popen(child_argv, stdin=subprocess.DEVNULL)
        except OSError as exc:
            server.server_close()
            print(f"relay: cannot run {child_argv[0]}: {exc.strerror}", file=sys.stderr)
            return 3

        def watch() -> None:
            code = child.wait()
            if not stopping.is_set():
                ended.append(code)
                print(f"relay: {child_argv[0]} exited with {code}; stopping", file=sys.stderr, flush=True)
                server.shutdown()

        stopping = threading.Event()
        threading.Thread(target=watch, daemon=True).start()
    try:
        serve_until_stopped(server, f"relay listening on 127.0.0.1:{server.server_address[1]} "
                                    f"for redis {args.redis[0]}:{args.redis[1]}")
    finally:
        if child is not None and child.poll() is None:
            stopping.set()
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return ended[0] if ended else 0


if __name__ == "__main__":
    sys.exit(main())
