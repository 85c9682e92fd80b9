"""Turn what Envoy printed into one error that names the cause and says what to do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from ..errors import EnvironmentProblem, HlocalError, InvalidWasm, PluginError, PortInUse
from .logs import LEVEL as _LEVEL, PLUGIN_LINE, THREAD, WASM_GO_PREFIX, read_lines, reassemble
from .panics import GoPanic, VmTrap, panic_in, vm_traps
from ..higress.hostcalls import HIGRESS_HOST_FUNCTIONS

# Lines that end a failed load. Envoy names the plugin by its Wasm config name (= plugin name).
# Envoy >= 1.3x (1.36 and 1.40 measured): "Plugin X failed to load", "Unable to create Wasm plugin X".
# Envoy 1.27 (Higress 2.0/2.1; envoyproxy/envoy source/extensions/filters/http/wasm/config.cc of
# that release): "Unable to create Wasm HTTP filter X", thrown into the ECDS/xDS rejection line.
_FAILED_LOAD = re.compile(r"Unable to create Wasm (?:plugin|HTTP filter) (?P<plugin>\S*)"
                          r"|Plugin (?P<plugin2>(?!configured )\S+) failed to load")
# Envoy 1.27's only line when a VM fails after the filter was created (source/extensions/common/wasm/
# wasm.cc getOrCreateThreadLocalPlugin): no name, so the plugin is found on the lines before it.
_FAIL_CLOSED = re.compile(r"Plugin configured to fail closed failed to load")
# hlocal names each plugin's filter (and ECDS resource) hlocal.plugin.<name> (render/envoy.py).
_FILTER_NAME = re.compile(r"hlocal\.plugin\.(?P<plugin>[a-z0-9][a-z0-9_-]*)")
_ECDS_REJECTED = re.compile(r"config update rejected: (?P<why>.*)$")
_INIT_ERROR = re.compile(r"error `(?P<why>[^`]*)` initializing config|error initializing configuration '[^']*': (?P<why2>.*)$")
_BIND = re.compile(r"cannot bind '(?P<addr>[^']*):(?P<port>\d+)': Address already in use")

# Cause lines, most specific first: (pattern, kind).
_CAUSES = [
    (re.compile(r"missing import: (?P<detail>\S+)"), "missing_import"),
    (re.compile(r"import type mismatch: (?P<detail>.*)$"), "import_mismatch"),
    (re.compile(r"Missing or unknown Proxy-Wasm ABI version"), "unknown_abi"),
    (re.compile(r"Failed to parse corrupted Wasm module"), "corrupt"),
    (re.compile(r"missing malloc function"), "no_malloc"),
    (re.compile(r"Failed to configure base Wasm plugin"), "configure_failed"),
    (re.compile(r"Wasm VM failed Failed to start|Failed to start base Wasm plugin"), "vm_start_failed"),
    (re.compile(r"Invalid path: (?P<detail>\S+)"), "missing_file"),
]

# What to say for the causes whose message needs no more than the detail: kind -> (error, message, hint).
_FIXED: dict[str, tuple[type[HlocalError], str, str]] = {
    "import_mismatch": (PluginError, "failed to load: import signature mismatch: {detail}",
                        "the plugin was built for another ABI; rebuild it with the Higress wasm-go SDK"),
    "unknown_abi": (PluginError, "failed to load: Envoy does not know its Proxy-Wasm ABI version",
                    "build it with the Higress wasm-go SDK (ABI 0.2.100) or proxy-wasm-go-sdk (0.2.1)"),
    "corrupt": (InvalidWasm, "failed to load: Envoy could not parse the module (corrupted or truncated)",
                "rebuild it: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o main.wasm"),
    "no_malloc": (PluginError, "failed to load: the module exports no allocator (malloc/proxy_on_memory_allocate)",
                  "build it with -buildmode=c-shared"),
    "missing_file": (PluginError, "failed to load: Envoy cannot read {detail}", "check plugins[].wasm"),
}


def plugin_errors(lines: list[str], plugin: str | None = None) -> list[str]:
    """The plugin's own error-level log lines (what it said when it refused its config)."""
    found = []
    for line in lines:
        match = PLUGIN_LINE.search(line)
        level = _LEVEL.search(line)
        if not match or not level or level.group("level") not in ("error", "critical", "warning"):
            continue
        if plugin is None or match.group("plugin") == plugin:
            found.append(WASM_GO_PREFIX.sub("", match.group("message").strip()))
    return found


def _quote(said: list[str]) -> str:
    """The plugin's last few distinct complaints, oldest first."""
    unique = list(dict.fromkeys(said))[-3:]
    return "; ".join(unique)


def classify_lines(lines: list[str], plugins: list[str], where: str = "") -> HlocalError | None:
    """The first failure in Envoy's output, classified; None when the lines show none."""
    for index, line in enumerate(lines):
        bind = _BIND.search(line)
        if bind:
            return PortInUse(int(bind.group("port")), "gateway listener or admin")
        failed = _FAILED_LOAD.search(line) or _ECDS_REJECTED.search(line) or _FAIL_CLOSED.search(line)
        init = _INIT_ERROR.search(line)
        if not failed and not init:
            continue
        window = lines[:index + 1]
        plugin = _plugin_named(window, plugins)
        cause = _cause(window)
        if cause is None and init and not failed:
            why = init.group("why") or init.group("why2")
            return EnvironmentProblem(
                f"Envoy refused the rendered configuration: {why}",
                f"this is probably an hlocal bug; the rendered files and logs are in {where or '.hlocal/'}",
            )
        if cause is None and failed and _ECDS_REJECTED.search(line) and "Wasm" not in line:
            return EnvironmentProblem(f"Envoy rejected a plugin filter update: {_ECDS_REJECTED.search(line).group('why')}",
                                      f"the rendered files and logs are in {where or '.hlocal/'}")
        return _plugin_error(cause, plugin, window)
    return None


def _plugin_named(window: list[str], plugins: list[str]) -> str | None:
    """The failed plugin: named by Envoy's failure line, else (Envoy 1.27's nameless "fail closed")
    by the nearest line before it that names one: its filter/ECDS resource, or its own error log."""
    for line in reversed(window):
        match = _FAILED_LOAD.search(line)
        name = match and (match.group("plugin") or match.group("plugin2"))
        if name and name in plugins:
            return name
    if len(plugins) == 1:
        return plugins[0]
    for line in reversed(window[-_NEARBY:]):
        resource = _FILTER_NAME.search(line)
        if resource and resource.group("plugin") in plugins:
            return resource.group("plugin")
        said = PLUGIN_LINE.search(line)
        level = _LEVEL.search(line)
        if said and level and level.group("level") in ("error", "critical") and said.group("plugin") in plugins:
            return said.group("plugin")
    return None


_NEARBY = 12  # lines before a nameless failure searched for the plugin's name


def _cause(window: list[str]) -> tuple[str, str] | None:
    for pattern, kind in _CAUSES:
        for line in window:
            match = pattern.search(line)
            if match:
                return kind, (match.groupdict().get("detail") or "")
    return None


def _plugin_error(cause: tuple[str, str] | None, plugin: str | None, window: list[str]) -> HlocalError:
    who = f"plugin {plugin!r}" if plugin else "a plugin"
    kind, detail = cause or ("unknown", "")
    if kind == "missing_import":
        function = detail.split(".", 1)[-1]
        if function in HIGRESS_HOST_FUNCTIONS:
            return PluginError(f"{who} failed to load: it imports {detail}, a Higress-only host function "
                               f"({HIGRESS_HOST_FUNCTIONS[function]}) that stock Envoy lacks",
                               "run it on the Higress gateway: `--runtime docker` with gateway.flavor: higress")
        if detail.startswith(("wasi_snapshot_preview1.", "wasi_unstable.")):
            # Older hosts link fewer WASI functions (higress/releases.py; hostcalls.STOCK_WASI_BEFORE_1_39: e.g.
            # path_filestat_get, which Go 1.24 modules import).
            return PluginError(f"{who} failed to load: this Envoy does not provide the WASI function {detail}",
                               "Higress gateways before 2.1.0 and stock Envoy before 1.39 link fewer WASI functions: "
                               "choose a newer gateway.higress, or gateway.envoy: bundled on the native runtime; "
                               "`hlocal check` says which releases run it")
        return PluginError(f"{who} failed to load: Envoy has no host function {detail}",
                           "rebuild the plugin against the proxy-wasm ABI this gateway speaks")
    if kind in _FIXED:
        error_type, message, hint = _FIXED[kind]
        return error_type(f"{who} " + message.format(detail=detail), hint)
    panic = start_panic(window, plugin)
    if panic is not None:  # in init() or the config parse: say what and where, not "failed to configure"
        return PluginError("\n".join([f"{who} panicked while starting: {panic.message}", *panic.frame_lines()]),
                           "fix the code at that line; Go's whole dump is in `hlocal logs gateway`")
    traps = vm_traps(window)
    if traps:  # no Go dump (another language, or a trap the Go runtime did not see): the engine's own words
        return PluginError(f"{who} crashed while starting: {traps[-1][1].summary()}",
                           "the whole in-VM backtrace is in `hlocal logs gateway`")
    if kind == "configure_failed":
        said = plugin_errors(window, plugin)
        quote = f": {_quote(said)}" if said else " (it logged nothing at warning level or above)"
        return PluginError(f"{who} rejected its configuration{quote}",
                           "fix plugins[].config (or rules) in hlocal.yaml; `hlocal logs --plugin` shows all it said")
    if kind == "vm_start_failed":
        said = plugin_errors(window, plugin)
        quote = f": {_quote(said)}" if said else ""
        return PluginError(f"{who} failed to start its VM{quote}", "see `hlocal logs --plugin`")
    last = next((l for l in reversed(window) if "[error]" in l or "[critical]" in l), window[-1] if window else "")
    return PluginError(f"{who} failed to load: {last.strip()}", "see `hlocal logs gateway`")


def start_panic(lines: list[str], plugin: str | None = None) -> GoPanic | None:
    """The last Go panic the plugin (any plugin when None) printed in these lines."""
    found = None
    for line in reassemble(lines):
        match = PLUGIN_LINE.search(line)
        # Go's init() runs before the plugin has a name: its dump names none (group "plugin" is None).
        if match and (plugin is None or match.group("plugin") in (plugin, None)) and "goroutine " in line:
            found = panic_in(match.group("message")) or found
    return found


def plugin_traps(lines: list[str], plugins: list[str]) -> list[tuple[str | None, VmTrap]]:
    """Every VM trap in the lines and the plugin it stopped (None when it cannot be told: the trap line
    names no plugin, so with several it is the one that last logged on the trap's thread, if any)."""
    out = []
    for index, trap in vm_traps(lines):
        plugin = plugins[0] if len(plugins) == 1 else _last_to_log(lines[max(0, index - _NEARBY):index + 1], plugins)
        out.append((plugin, trap))
    return out


def _last_to_log(window: list[str], plugins: list[str]) -> str | None:
    """The plugin that last logged on the thread of the window's last line."""
    thread = THREAD.match(window[-1])
    for line in reversed(window[:-1]) if thread else ():
        said, other = PLUGIN_LINE.search(line), THREAD.match(line)
        if said and other and other.group("tid") == thread.group("tid") and said.group("plugin") in plugins:
            return said.group("plugin")
    return None


class LogWatch:
    """Follows Envoy's output (a growing file, or a callable returning every line so far, as for a
    container) and raises the first classified failure."""

    def __init__(self, source: Path | Callable[[], list[str]], plugins: list[str], start: int = 0,
                 where: str = "") -> None:
        self.source = source
        self.plugins = plugins
        self.offset = start
        self.lines: list[str] = []
        self.where = where or (str(source.parent) if isinstance(source, Path) else "")

    def poll(self) -> list[str]:
        if isinstance(self.source, Path):
            fresh, self.offset = read_lines(self.source, self.offset)
            self.lines.extend(fresh)
            return fresh
        everything = self.source()
        fresh = everything[self.offset:]
        self.lines.extend(fresh)
        self.offset = len(everything)
        return fresh

    def failure(self) -> HlocalError | None:
        self.poll()
        return classify_lines(self.lines, self.plugins, self.where)

    def raise_if_failed(self) -> None:
        error = self.failure()
        if error is not None:
            raise error


def classify_exit(name: str, exit_info: dict, log_file: Path, plugins: list[str]) -> HlocalError:
    """A component exited during start: the classified cause from its log, or the bare facts."""
    lines, _ = read_lines(log_file)
    if name == "gateway":
        found = classify_lines(lines, plugins, str(log_file.parent))
        if found is not None:
            return found
    code = exit_info.get("returncode")
    sig = exit_info.get("signal")
    how = f"was killed by {sig}" if sig else f"exited with code {code}" if code is not None else "exited"
    tail = "\n  ".join(l.strip() for l in lines[-5:])
    if name == "backend" and code == 3:
        return EnvironmentProblem(f"the mock backend could not bind its port: {tail}", "run `hlocal up` again")
    return EnvironmentProblem(f"the {name} {how}" + (f":\n  {tail}" if tail else ""), f"see {log_file}")
