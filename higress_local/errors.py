"""Typed errors: each carries a message, a hint and the exit code the CLI maps it to."""

from __future__ import annotations

import enum
import shlex


class ExitCode(enum.IntEnum):
    """Every exit code hlocal uses (documented in README.md, "Exit codes")."""

    OK = 0
    PROBE_FAILED = 1  # also: `status` of a stack that is not healthy
    USAGE = 2  # a command-line or hlocal.yaml error
    ENVIRONMENT = 3  # something on the machine: Envoy, Docker, a port, the disk, the state folder
    PLUGIN = 4  # a plugin cannot load or be configured
    TIMEOUT = 5  # not ready before the deadline
    HANGUP = 129  # SIGHUP (128 + 1)
    INTERRUPTED = 130  # Ctrl-C, SIGINT (128 + 2)
    TERMINATED = 143  # SIGTERM (128 + 15)


# Kept for callers of the first API.
EXIT_OK = ExitCode.OK
EXIT_PROBE_FAILED = ExitCode.PROBE_FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_ENVIRONMENT = ExitCode.ENVIRONMENT
EXIT_PLUGIN = ExitCode.PLUGIN
EXIT_TIMEOUT = ExitCode.TIMEOUT


class HlocalError(Exception):
    """Base error: a message for the user, a hint on what to do, an exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(HlocalError):
    """hlocal.yaml (or a command-line value) is wrong."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(HlocalError):
    """Something hlocal needs from the machine is missing or busy (Envoy, Docker, a port)."""

    exit_code = EXIT_ENVIRONMENT


class PortInUse(EnvironmentProblem):
    """A port hlocal must bind is taken."""

    def __init__(self, port: int, what: str, owner: str = "") -> None:
        by = f" (by {owner})" if owner else ""
        super().__init__(
            f"port {port} ({what}) is in use{by}",
            f"pass another port in hlocal.yaml (or 0 to pick a free one), or stop that process",
        )
        self.port = port


class PluginError(HlocalError):
    """A plugin is invalid, incompatible, or failed to load or configure."""

    exit_code = EXIT_PLUGIN


class InvalidWasm(PluginError):
    """A file is not a WebAssembly module (or is truncated)."""


class ProbeFailed(HlocalError):
    """At least one probe did not see what it expected."""

    exit_code = EXIT_PROBE_FAILED


class McpCallFailed(HlocalError):
    """`hlocal mcp`: the MCP server answered with an error (a JSON-RPC error, or a tool result with isError)."""

    exit_code = EXIT_PROBE_FAILED


class Unhealthy(HlocalError):
    """`status`: the stack is degraded or not running (the report was already printed)."""

    exit_code = EXIT_PROBE_FAILED


class NotRunning(EnvironmentProblem):
    """The command needs a running stack and there is none."""


class CorruptState(EnvironmentProblem):
    """.hlocal/<name>/state.json cannot be read as a stack state."""


class UnsafeStatePath(EnvironmentProblem):
    """A symlink or special file where hlocal keeps its own state: never followed."""


class StackBusy(EnvironmentProblem):
    """Another hlocal command holds the stack's lock."""


class DiskFull(EnvironmentProblem):
    """Writing into the state folder failed for lack of space (or quota)."""


class Stopped(BaseException):
    """A signal asked hlocal to stop (SIGINT, SIGTERM, SIGHUP): cleans up like Ctrl-C, exits 128+N.

    A BaseException, like KeyboardInterrupt, so that `except Exception` never swallows it.
    """

    def __init__(self, signum: int, name: str, exit_code: ExitCode) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name
        self.exit_code = exit_code


def outcome_of(exc: BaseException) -> dict | None:
    """How a command that raised `exc` ends, as the CLI prints it and the agent sends it (agent/wire.py
    `print_outcome`): its exit code, and [message, hint] or a note; None: not an end hlocal knows (a bug).
    Model: pip's `Command.main`, the one place that turns what `_main` raised into an exit code."""
    if isinstance(exc, HlocalError):
        return {"exit": int(exc.exit_code), "error": [exc.message, exc.hint or ""]}
    if isinstance(exc, KeyboardInterrupt):
        return {"exit": int(ExitCode.INTERRUPTED), "note": "interrupted"}
    if isinstance(exc, Stopped):
        return {"exit": int(exc.exit_code), "note": f"stopped by {exc.name}"}
    return None


class WaitTimeout(HlocalError):
    """Something did not become ready before its deadline."""

    exit_code = EXIT_TIMEOUT


class CommandFailed(HlocalError):
    """An external program exited non-zero; carries argv, code, stdout and stderr."""

    exit_code = ExitCode.ENVIRONMENT

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        hint: str = "",
    ) -> None:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"`{shlex.join(argv)}` exited with {returncode}{detail}", hint)
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
