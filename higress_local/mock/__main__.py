"""Command line: run one mock until SIGTERM or SIGINT; the first stdout line says its ports."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from .client import read_token_file
from .journal import DEFAULT_LIMIT, DEFAULT_MAX_BYTES
from .server import MockServer
from .stubs import StubConfigError
from .wire import KEEP_BODY, MAX_BODY

# Same numbers as hlocal's own CLI: bad usage or config, and an environment problem (port taken).
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class _Stop(Exception):
    """Raised in the main thread by the SIGTERM/SIGINT handler."""


def main(argv: list[str] | None = None) -> int:
    """Run the mock; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        # Without --token-file the control API needs no token (as before tokens existed).
        token = read_token_file(args.token_file) if args.token_file else None
        server = MockServer(
            _read_config(args.config),
            host=args.host,
            port=args.port,
            control_port=args.control_port,
            name=args.name,
            quiet=args.quiet,
            journal_limit=args.journal_limit,
            journal_max_bytes=args.journal_max_bytes,
            max_body=args.max_body,
            keep_body=args.keep_body,
            token=token,
        )
    except (OSError, ValueError) as exc:  # StubConfigError is a ValueError
        print(f"hlocal-mock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _on_stop_signals(_raise_stop)
    try:
        server.start()
    except OSError as exc:
        print(
            f"hlocal-mock: cannot listen on {args.host} ports {args.port}/{args.control_port} "
            f"({exc.strerror or exc}); pass other ports, or 0 to pick free ones",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    except _Stop:
        server.stop()
        return 0
    try:
        event = {"event": "listening", "name": server.name, "host": args.host}
        event.update(port=server.port, control_port=server.control_port, loop=server.loop_name)
        print(json.dumps(event), flush=True)
        while True:
            # The signal handler interrupts this sleep by raising _Stop; no polling happens.
            time.sleep(3600)
    except _Stop:
        pass
    finally:
        # A second signal while stopping must not interrupt the cleanup.
        _on_stop_signals(signal.SIG_IGN)
        server.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hlocal-mock", description="Mock HTTP backend: echoes requests or answers from stubs."
    )
    parser.add_argument("--port", type=_port, default=0, help="backend port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    parser.add_argument("--control-port", type=_port, default=0, help="control API port (0 picks a free one)")
    parser.add_argument("--config", help='JSON file holding {"stubs": [...]}')
    parser.add_argument("--name", default="backend", help="name shown in health and log lines")
    parser.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    parser.add_argument("--journal-limit", type=_positive, default=DEFAULT_LIMIT, metavar="N",
                        help=f"requests kept in the journal (default {DEFAULT_LIMIT})")
    parser.add_argument("--journal-max-bytes", type=_positive, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                        help="bytes the journal may hold in all; the oldest requests go first "
                             f"(default {DEFAULT_MAX_BYTES})")
    parser.add_argument("--keep-body", type=_size, default=KEEP_BODY, metavar="BYTES",
                        help="bytes of each request body kept for the echo reply and the journal; a longer "
                             f"body is marked body_truncated, with body_size and body_sha256 (default {KEEP_BODY})")
    parser.add_argument("--max-body", type=_size, default=MAX_BODY, metavar="BYTES",
                        help=f"largest request body accepted; a larger one gets 413 (default {MAX_BODY})")
    parser.add_argument("--token-file", metavar="PATH",
                        help="file (mode 600) holding the token the control API requires; without it, none is")
    return parser


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 meaning "pick a free one"."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return int(text)


def _size(text: str) -> int:
    """An argparse type: a byte count >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of bytes >= 0, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _read_config(path: str | None) -> dict[str, Any] | None:
    """Load the JSON config file; errors name the file and, for bad JSON, the line."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise OSError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StubConfigError(f"config {path} is not valid JSON: {exc}") from None


def _on_stop_signals(handler: Any) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


if __name__ == "__main__":
    sys.exit(main())
