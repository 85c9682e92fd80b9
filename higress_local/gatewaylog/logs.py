"""Reading, merging and following the stack's logs; picking out and shortening the plugins' own lines.

Lines of several files are merged in time order by the timestamp each line carries (Envoy's
`[YYYY-MM-DD HH:MM:SS.mmm]`, an ISO-8601 time, a JSON `time`/`ts` field, redis-server's
`pid:X DD Mon YYYY HH:MM:SS.mmm`). A line without one keeps its place after the line before it in
its own file, so nothing is ever reordered within one file.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator
from ..errors import ConfigError

from .panics import DUMP_START, join_fragments, panic_in

# Envoy prints what a plugin logs as "wasm log <plugin> <root_id> <vm_id>: <message>"
# (envoyproxy/envoy source/extensions/common/wasm/context.cc, Context::log). hlocal gives the plugin
# name as all three, so a raw line repeats it; wasm-go then prefixes "[<plugin name>]" itself. What a
# module prints before any plugin context exists (Go's init(), its runtime) is "wasm log: <message>":
# then the group "plugin" is None.
PLUGIN_LINE = re.compile(r"wasm log(?: (?P<plugin>[^\s:]+)(?: [^\s:]*)?(?: [^\s:]*)?)?: (?P<message>.*)$")
VM_NAME = "(plugin VM)"  # how a line that names no plugin is shown
BRIDGE = "hlocal.bridge"
# wasm-go prefixes its messages "[plugin] [trace id] [request id] " (pkg/log); the name is said already,
# and where a line is shown (one request, one component's log) the ids are "[nil]" or known.
WASM_GO_PREFIX = re.compile(r"^\[[\w.-]+\] \[[^\]]*\] \[[^\]]*\] ")
# The Envoy thread id of "[time][tid][level]": the fragments of one Go dump come from one thread.
THREAD = re.compile(r"^\[[^\]]*\]\[(?P<tid>\d+)\]")
# Envoy's default format "[...][error][wasm] ..." and Istio/Higress's "...Z\terror\tenvoy wasm ...".
LEVEL = re.compile(r"[\[\t](?P<level>trace|debug|info|warning|error|critical)[\]\t]")

_ENVOY_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\]")
_ISO_TIME = re.compile(r"^\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?(?=\s|$)")
_REDIS_TIME = re.compile(r"^\d+:[A-Z] (\d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d+) ")
_SINCE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def is_plugin_line(line: str) -> bool:
    """A line a plugin logged (not one of hlocal's own property bridge)."""
    match = PLUGIN_LINE.search(line)
    return match is not None and match.group("plugin") != BRIDGE


def plugin_lines(lines: Iterable[str]) -> list[str]:
    return [line for line in lines if is_plugin_line(line)]


def short_plugin_line(line: str) -> str | None:
    """`plugin-name: message` for a plugin's line (Envoy's and wasm-go's prefixes dropped: the name once);
    a Go panic in it as its message and the plugin's own frames, one per line. Else None."""
    match = PLUGIN_LINE.search(line)
    if match is None or match.group("plugin") == BRIDGE:
        return None
    name = match.group("plugin") or VM_NAME
    return f"{name}: {plugin_message(name, match.group('message'))}"


def plugin_message(name: str, message: str) -> str:
    """What a plugin said, without wasm-go's prefix; a Go panic as its message and own frames, one a line."""
    message = WASM_GO_PREFIX.sub("", message)
    if message.startswith(f"[{name}] "):
        message = message[len(name) + 3:]
    panic = panic_in(message) if "goroutine " in message else None
    return "\n".join(panic.lines()) if panic is not None else message


def timed_plugin_line(line: str) -> str:
    """`HH:MM:SS.mmm plugin-name: message` for a plugin's line (as `hlocal logs -t` reads); else the line."""
    short = short_plugin_line(line)
    if short is None:
        return line
    match = _ENVOY_TIME.match(line)
    return f"{match.group(1)[11:23]} {short}" if match else short


def line_time(line: str) -> float | None:
    """The time a log line carries at its start (epoch seconds), if any."""
    match = _ENVOY_TIME.match(line)
    if match:  # Envoy logs local time without a zone
        return _local(datetime.strptime(match.group(1)[:26], _fmt(match.group(1), " ")))
    match = _ISO_TIME.match(line)
    if match:
        return _iso(match.group(1))
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in ("time", "ts", "timestamp", "start_time"):
                value = doc.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
                if isinstance(value, str):
                    found = _iso(value)
                    if found is not None:
                        return found
        return None
    match = _REDIS_TIME.match(line)
    if match:
        try:
            return _local(datetime.strptime(match.group(1), "%d %b %Y %H:%M:%S.%f"))
        except ValueError:
            return None
    return None


def _fmt(text: str, sep: str) -> str:
    return f"%Y-%m-%d{sep}%H:%M:%S" + (".%f" if "." in text else "")


def _local(moment: datetime) -> float:
    return moment.timestamp()  # naive: interpreted in the local zone, as the program wrote it


def _iso(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else _local(moment)


def parse_since(text: str, now: float | None = None) -> float:
    """`--since` as epoch seconds: a duration back from now (10s, 5m, 1h30m, 2d) or a time (ISO 8601)."""
    now = time.time() if now is None else now
    compact = text.strip()
    if compact and _SINCE.sub("", compact) == "":
        return now - sum(float(n) * _UNITS[u] for n, u in _SINCE.findall(compact))
    found = _iso(compact)
    if found is None:
        raise ConfigError(f"--since {text!r}: expected a duration (10s, 5m, 1h30m) or a time (2026-12-02T10:00:00)",
                          "for example --since 5m")
    return found


def reassemble(lines: list[str]) -> list[str]:
    """The lines with each run of Go dump fragments joined into one plugin line (newlines as `\\n`)."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = PLUGIN_LINE.search(line)
        if match is None or not DUMP_START.match(match.group("message")):
            out.append(line)
            index += 1
            continue
        run, rest = _fragment_run(lines, index, match.group("plugin"))
        text = join_fragments(run).replace("\n", "\\n")
        out.append(line[:match.start("message")] + text)
        out.extend(rest)
        index += len(run) + len(rest)
    return out


def _fragment_run(lines: list[str], start: int, plugin: str) -> tuple[list[str], list[str]]:
    """The fragments of one dump from lines[start] on (same plugin and thread), and the other threads'
    lines met among them (kept, in order, after the joined line)."""
    thread = THREAD.match(lines[start])
    fragments, others = [], []
    for line in lines[start:]:
        match = PLUGIN_LINE.search(line)
        same_thread = thread is None or (THREAD.match(line) or thread).group("tid") == thread.group("tid")
        if match and match.group("plugin") == plugin and same_thread and _is_error(line) \
                and (not fragments or not DUMP_START.match(match.group("message"))):
            fragments.append(match.group("message"))
        elif same_thread:
            break
        else:
            others.append(line)
    return fragments, others


@dataclass
class LogLine:
    """One line of one source, with the time it carries (or inherits from the line before it)."""

    source: str
    text: str
    time: float | None
    order: int = 0  # position within its source: ties keep file order


def timed(source: str, lines: Iterable[str], carry: float | None = None) -> list[LogLine]:
    """Lines of one source with times; an untimed line inherits the previous line's time."""
    out = []
    for index, text in enumerate(lines):
        found = line_time(text)
        carry = found if found is not None else carry
        out.append(LogLine(source, text, carry, index))
    return out


def merge(sources: Iterable[list[LogLine]]) -> list[LogLine]:
    """All sources in time order (untimed leading lines first); stable within each source."""
    import heapq

    def key(line: LogLine) -> tuple[float, int]:
        return (line.time if line.time is not None else float("-inf"), line.order)

    return list(heapq.merge(*sources, key=key))


@dataclass(frozen=True)
class LogView:
    """What `hlocal logs` shows of each line."""

    plugin_only: bool = False
    prefix: bool = True
    timestamps: bool = False
    since: float | None = None
    width: int = 8

    def keep(self, line: LogLine) -> bool:
        if self.since is not None and (line.time is None or line.time < self.since):
            return False
        return not self.plugin_only or is_plugin_line(line.text)

    def render(self, line: LogLine) -> str:
        text = line.text
        short = short_plugin_line(text)
        if short is not None:
            text = short
        elif self.timestamps:  # the line's own time is said once, in front
            text = _ISO_TIME.sub("", _ENVOY_TIME.sub("", text, count=1), count=1).lstrip()
        if self.timestamps:
            stamp = (datetime.fromtimestamp(line.time, timezone.utc).isoformat(timespec="milliseconds")
                     .replace("+00:00", "Z") if line.time is not None else "-")
            text = f"{stamp} {text}"
        if self.prefix:  # every line of a multi-line message (a panic's frames) carries it
            text = "\n".join(f"{line.source:<{self.width}}| {part}" for part in text.split("\n"))
        return text


def read_lines(path: Path, start: int = 0) -> tuple[list[str], int]:
    """Lines from byte offset `start`; returns them and the offset after the last full line."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    return text.splitlines(), start + end


def follow_files(
    files: dict[str, Path], *, plugin_only: bool, follow: bool, tail: int | None, prefix: bool,
    since: float | None = None, timestamps: bool = False,
    poll: float = 0.2, stop: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Existing lines merged in time order (optionally the last N), then new ones while `follow`."""
    view = LogView(plugin_only=plugin_only, prefix=prefix, timestamps=timestamps, since=since,
                   width=max([8, *(len(n) + 1 for n in files)]))
    offsets: dict[str, int] = {}
    carry: dict[str, float | None] = {}
    sources = []
    for name, path in files.items():
        lines, offsets[name] = read_lines(path)
        items = timed(name, reassemble(lines))
        carry[name] = items[-1].time if items else None
        sources.append(items)
    backlog = [line for line in merge(sources) if view.keep(line)]
    if tail is not None:
        backlog = list(deque(backlog, maxlen=tail)) if tail > 0 else []
    yield from (view.render(line) for line in backlog)
    while follow and not (stop and stop()):
        fresh = []
        for name, path in files.items():
            lines, offsets[name] = read_lines(path, offsets[name])
            items = timed(name, reassemble(lines), carry[name])
            if items:
                carry[name] = items[-1].time
            fresh.append(items)
        shown = [line for line in merge(fresh) if view.keep(line)]
        yield from (view.render(line) for line in shown)
        if not any(fresh):
            time.sleep(poll)


def _is_error(line: str) -> bool:
    level = LEVEL.search(line)
    return level is not None and level.group("level") == "error"
