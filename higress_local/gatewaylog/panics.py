"""Go panics in the gateway log, made readable: the message and the plugin's own frames.

Two shapes reach the log. A panic wasm-go recovers (a request callback; wasm-go `pkg/wrapper`
`recoverFunc`) is one plugin line, "recovered from panic X, stack: goroutine 1 [running]:\\n...", whose
newlines Envoy prints as a literal backslash-n. A panic nothing recovers (in `init()` or the config parse)
is Go's own dump on stderr, written one `print` argument at a time: Envoy logs each write as its own
"wasm log" line and drops one trailing newline from each (proxy-wasm-cpp-host `src/exports.cc`,
`writevImpl`). `logs.reassemble` joins such a run back into one line of the first shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DUMP_START = re.compile(r"^(panic: |fatal error: )")
_RECOVERED = re.compile(r"recovered from panic (?P<message>.*), stack: (?P<dump>goroutine \d+ .*)$")
_FUNCTION = re.compile(r"^(?P<function>[^\s(][^\t]*?)(?:\((?P<args>[^()]*)\))?$")
_FILE = re.compile(r"^\t(?P<file>\S+?):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")


@dataclass(frozen=True)
class GoPanic:
    """What a Go panic said, and where in the plugin's own code it was."""

    message: str
    frames: list[tuple[str, str]] = field(default_factory=list)  # (function, file:line), innermost first
    recovered: bool = False

    def lines(self) -> list[str]:
        """`panic: message` then one `  at function (file:line)` per frame of the plugin's own."""
        head = f"panic: {self.message}" + (" (recovered by wasm-go; the request went on)" if self.recovered else "")
        return [head] + self.frame_lines()

    def frame_lines(self) -> list[str]:
        return [f"  at {function} ({where})" for function, where in self.frames]

    def summary(self) -> str:
        """One line: the message and the innermost frame of the plugin's own."""
        if not self.frames:
            return self.message
        function, where = self.frames[0]
        return f"{self.message} at {where.rsplit('/', 1)[-1]} ({function})"


def parse_dump(text: str, recovered: bool = False) -> GoPanic | None:
    """A Go goroutine dump ("panic: X" or "fatal error: X", then "goroutine N [...]:" and frames)."""
    lines = text.splitlines()
    if not lines:
        return None
    head = DUMP_START.match(lines[0])
    if head is None and not recovered:
        return None
    message = lines[0][head.end():] if head else ""
    frames = []
    for index, line in enumerate(lines[1:-1], start=1):
        function, place = _FUNCTION.match(line), _FILE.match(lines[index + 1])
        if function and place and _own(function.group("function"), place.group("file")):
            frames.append((function.group("function"), f"{place.group('file')}:{place.group('line')}"))
    return GoPanic(message.strip(), frames, recovered)


def _own(function: str, file: str) -> bool:
    """A frame of the plugin's own code: not Go's runtime, not a dependency (module files carry `@version`)."""
    if "@" in file or file.startswith("runtime/") or function.startswith(("runtime.", "panic")):
        return False
    return True


def panic_in(message: str) -> GoPanic | None:
    """The panic a plugin line's message reports (recovered by wasm-go, or a reassembled dump)."""
    text = message.replace("\\n", "\n")
    recovered = _RECOVERED.search(text.replace("\n", "\x00"))
    if recovered:
        found = parse_dump(recovered.group("dump").replace("\x00", "\n"), recovered=True)
        if found is not None:
            return GoPanic(recovered.group("message"), found.frames, True)
    start = DUMP_START.search(text)
    return parse_dump(text[start.start():]) if start and "\ngoroutine " in text else None


def join_fragments(fragments: list[str]) -> str:
    """Go's dump text from its writes as Envoy logged them (each with one trailing newline dropped).

    A write that was only a newline comes back empty; the two others that end a line in Go's traceback
    format are a frame's closing ")" (its file follows on a line starting with a tab) and the ":" closing
    "goroutine N [running]:".
    """
    out = []
    for index, fragment in enumerate(fragments):
        after = fragments[index + 1] if index + 1 < len(fragments) else ""
        before = fragments[index - 1] if index else ""
        if fragment == "":
            out.append("\n")
        elif (fragment.endswith(")") and after.startswith("\t")) or (fragment == ":" and before == "]"):
            out.append(fragment + "\n")
        else:
            out.append(fragment)
    return "".join(out)


# A trap ends a callback: "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"
# (proxy-wasm-cpp-host, Envoy's wasm_vm.cc), then V8's "Proxy-Wasm plugin in-VM backtrace:" and one
# "  N:  0xOFFSET - name" line per frame, the names from the module's name section.
_TRAP = re.compile(r"Function: (?P<callback>\w+) failed: (?P<reason>.*)$")
_TRAP_FRAME = re.compile(r"^\s*\d+:\s+0x[0-9a-f]+ - (?P<name>\S+)")
_FRAMES_SHOWN = 4


@dataclass(frozen=True)
class VmTrap:
    """A plugin's VM stopped by the engine: the callback, why, and the plugin's own frames."""

    callback: str
    reason: str
    frames: tuple[str, ...] = ()

    def summary(self) -> str:
        where = f" at {' < '.join(self.frames)}" if self.frames else ""
        return f"{self.reason} in {self.callback}{where}"


def vm_traps(lines: list[str]) -> list[tuple[int, VmTrap]]:
    """Every trap in the lines, with the index of its line."""
    found = []
    for index, line in enumerate(lines):
        match = _TRAP.search(line)
        if match is None:
            continue
        names = []
        for follow in lines[index + 1:]:
            frame = _TRAP_FRAME.match(follow)
            if frame is None and not follow.startswith("Proxy-Wasm plugin in-VM backtrace"):
                break
            if frame is not None and frame.group("name").startswith("main.") \
                    and (not names or names[-1] != frame.group("name")):
                names.append(frame.group("name"))  # Go's main package: the plugin's own code; repeats once
        found.append((index, VmTrap(match.group("callback"), match.group("reason").strip(),
                                    tuple(names[:_FRAMES_SHOWN]))))
    return found
