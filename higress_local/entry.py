"""The `hlocal` entry point: a config-only `hlocal reload` goes to the stack's warm agent, all else to the CLI.

Starting Python and importing the command line (Click, YAML, the config model, the reload code)
takes several times what Envoy needs to swap a plugin config. `up` leaves a small agent per stack
(runtime/agent.py) with all of that imported; `hlocal reload` with the options below is sent to it over a
Unix socket in the stack's folder, and the agent answers with the exact output and exit code the
CLI would give. Whatever the agent cannot do the same way (a build, a restart, --debug, another
hlocal version, any other option) it declines before touching anything, and the CLI runs as always.
HLOCAL_NO_AGENT=1 turns the agent off. Only built-in modules are imported here.
"""

from __future__ import annotations

import os
import sys

from .agent import wire as agentwire

CONFIG_NAMES = ("hlocal.yaml", "hlocal.yml")  # as config.CONFIG_NAMES (a unit test keeps them equal)
CONNECT_TIMEOUT_S = 2.0
# After the agent's own --timeout has run out it answers; this is how much longer the client waits.
ANSWER_MARGIN_S = 30.0
_STOP_SIGNALS = (2, 15, 1)  # SIGINT, SIGTERM, SIGHUP: forwarded, so the agent rolls back as the CLI would


def main() -> None:
    code = None if agentwire.disabled() else reload_through_agent(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from .cli.group import main as cli

    cli(prog_name="hlocal")


def parse_reload(argv: list[str]) -> dict | None:
    """The request for `[-f X] reload [-f X] [--name N] [--timeout S] [--build|--no-build] [PLUGIN...]`,
    or None for any other command line (which the CLI then parses and reports)."""
    request: dict = {"file": None, "name": None, "plugins": [], "build": True, "timeout": 120.0}
    args = iter(argv)
    command = False
    for arg in args:
        key, eq, value = arg.partition("=")
        if key in ("-f", "--file") or (command and key in ("--name", "--timeout")):
            if not eq:
                value = next(args, None)
                if value is None:
                    return None
            if key == "--timeout":
                try:
                    request["timeout"] = float(value)
                except ValueError:
                    return None
            else:
                request["name" if key == "--name" else "file"] = value
        elif not command:
            if arg != "reload":
                return None
            command = True
        elif arg in ("--build", "--no-build"):
            request["build"] = arg == "--build"
        elif arg == "--":
            request["plugins"] += list(args)
        elif arg.startswith("-"):
            return None
        else:
            request["plugins"].append(arg)
    return request if command else None


def find_config(path: str | None, cwd: str) -> str | None:
    """The hlocal.yaml config.find_config would pick, or None (the CLI then says what is wrong)."""
    if path is not None:
        candidate = os.path.join(cwd, path)
        if os.path.isdir(candidate):
            candidate = next((os.path.join(candidate, n) for n in CONFIG_NAMES
                              if os.path.exists(os.path.join(candidate, n))), candidate)
        return os.path.realpath(candidate) if os.path.isfile(candidate) else None
    directory = cwd
    while True:
        for name in CONFIG_NAMES:
            if os.path.exists(os.path.join(directory, name)):
                return os.path.realpath(os.path.join(directory, name))
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def agent_sockets(config: str, name: str | None) -> list[str]:
    """Sockets of agents in the project's .hlocal/ that are real sockets of this user, reached without links."""
    import stat

    root = os.path.join(os.path.dirname(config), ".hlocal")
    try:
        names = [name] if name else sorted(os.listdir(root))
    except OSError:
        return []
    found = []
    uid = os.geteuid()
    for stack in names:
        state_dir = os.path.join(root, stack)
        path = agentwire.socket_path(state_dir)
        try:
            folders = [os.lstat(p) for p in (root, state_dir, os.path.dirname(path))]
            sock = os.lstat(path)
        except OSError:
            continue
        if all(stat.S_ISDIR(f.st_mode) and f.st_uid == uid for f in folders) \
                and stat.S_ISSOCK(sock.st_mode) and sock.st_uid == uid:
            found.append(path)
    return found


def reload_through_agent(argv: list[str]) -> int | None:
    """Run the reload in the stack's agent and print its answer; None: run the CLI instead."""
    request = parse_reload(argv)
    if request is None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    config = find_config(request["file"], cwd)
    if config is None:
        return None
    request.update(op="reload", cwd=cwd, env=dict(os.environ), package=os.path.dirname(__file__))
    for path in agent_sockets(config, request["name"]):
        answer = _ask(path, request)
        if answer is None or "fallback" in answer:
            continue
        return agentwire.print_outcome(answer)
    return None


def _ask(path: str, request: dict) -> dict | None:
    import _signal

    try:
        sock = agentwire.connect(path, CONNECT_TIMEOUT_S)
    except OSError:
        return None  # no agent listening (it stopped, or has not started yet)
    previous = {}

    def forward(signum: int, _frame: object) -> None:
        try:
            agentwire.send(sock, {"signal": signum})
        except OSError:
            pass

    try:
        agentwire.send(sock, request)
        for signum in _STOP_SIGNALS:
            previous[signum] = _signal.signal(signum, forward)
        sock.settimeout(request["timeout"] + ANSWER_MARGIN_S)
        return agentwire.receive(sock)
    except OSError:
        # The agent stopped mid-request: it rolled back what it had swapped (or died with the
        # files pending); the CLI's reload compares with the state again and finishes the job.
        print("hlocal: the reload agent stopped; reloading without it", file=sys.stderr)
        return None
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
        sock.close()

