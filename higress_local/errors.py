"""Typed errors: each carries a message, a hint and the exit code the CLI maps it to."""

from __future__ import annotations

# Exit codes (documented in README.md).
EXIT_OK = 0
EXIT_PROBE_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_PLUGIN = 4
EXIT_TIMEOUT = 5


class HlocalError(Exception):
    """Base error: a message for the user, a hint on what to do, an exit code."""

    exit_code = EXIT_USAGE

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


class WaitTimeout(HlocalError):
    """Something did not become ready before its deadline."""

    exit_code = EXIT_TIMEOUT


class CommandFailed(HlocalError):
    """An external program exited non-zero; carries argv, code, stdout and stderr."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        hint: str = "",
    ) -> None:
        import shlex

        tail = (stderr or stdout).strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"`{shlex.join(argv)}` exited with {returncode}{detail}", hint)
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
