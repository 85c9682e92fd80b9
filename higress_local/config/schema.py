"""Parse YAML within limits, then validate it: every error names the file and the key path it is about."""

from __future__ import annotations

import re
from typing import Any, Iterable

from ..errors import ConfigError

_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    type(None): "nothing (null)",
}


# Bounds on what a document may expand to. YAML aliases (`*name`) repeat a node without copying it,
# so ten nested levels of ten aliases ("billion laughs") parse into a tiny object graph that every
# later walk (JSON for the plugin config, the rendered files) expands to 10^10 values. A file
# without aliases cannot exceed the text bound (it is the file size cap, fileguard.CONFIG_CAP).
MAX_DEPTH = 100  # nesting levels, aliases expanded; deeper overflows Python's recursion on the way
MAX_VALUES = 1_000_000  # scalars, lists and mappings (keys included), each alias use counted again
MAX_TEXT = 16 * 1024 * 1024  # characters of scalar text, each alias use counted again


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document (duplicate keys refused) within the bounds above; ConfigError otherwise."""
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader(source))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}", "fix the YAML syntax") from None


def _bounded_loader(source: str):
    """A SafeLoader that refuses a key given twice (PyYAML would silently keep the last) and
    documents past the bounds, checked on the node graph before any Python object is built."""
    import yaml

    def too_big(node_or_mark: Any, problem: str) -> ConfigError:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        return ConfigError(
            f"{source}: {line}{problem}",
            f"{source} may nest {MAX_DEPTH} levels and hold {MAX_VALUES:,} values and "
            f"{MAX_TEXT // (1024 * 1024)} MiB of text, each alias (*name) counted every time it is used",
        )

    class BoundedLoader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent, index):  # type: ignore[override]
            # The composer recurses once per level: stop before Python's recursion limit does.
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise too_big(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def get_single_node(self):  # type: ignore[override]
            node = super().get_single_node()
            if node is not None:
                _measure(node, too_big)
            return node

        def construct_mapping(self, node, deep=False):  # type: ignore[override]
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults`: merged keys may be overridden, the base class merges them
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return BoundedLoader


def _measure(root: Any, too_big: Any) -> None:
    """Values, text and depth of the document as aliases expand it, in one pass over the node graph.

    Each node is measured once (aliases share nodes), bottom-up, without recursion: the graph can
    be far deeper than the composed file when aliases wrap aliases.
    """
    measured: dict[int, tuple[int, int, int]] = {}  # id(node) -> (values, text, depth)
    entered: set[int] = set()  # the nodes on the current path: meeting one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            entered.discard(key)
            values, text, depth = 1, len(node.value) if isinstance(node.value, str) else 0, 0
            for kid in kids:
                kid_values, kid_text, kid_depth = measured[id(kid)]
                values, text, depth = values + kid_values, text + kid_text, max(depth, kid_depth)
            depth += 1
            if depth > MAX_DEPTH:
                raise too_big(node, f"nested deeper than {MAX_DEPTH} levels once aliases are expanded")
            if values > MAX_VALUES:
                raise too_big(node, f"aliases expand the document past {MAX_VALUES:,} values")
            if text > MAX_TEXT:
                raise too_big(node, f"aliases expand the document past {MAX_TEXT // (1024 * 1024)} MiB of text")
            measured[key] = (values, text, depth)
            continue
        if key in measured:
            continue
        entered.add(key)
        stack.append((node, True))
        for kid in kids:
            if id(kid) in entered:
                raise too_big(kid, "an alias refers to a node that contains it (a recursive alias)")
            if id(kid) not in measured:
                stack.append((kid, False))


def _children(node: Any) -> list[Any]:
    if isinstance(node.value, list):  # a sequence's items, or a mapping's (key, value) pairs
        return [part for item in node.value for part in (item if isinstance(item, tuple) else (item,))]
    return []


def describe(value: Any) -> str:
    """Name the YAML type of a value for error messages."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class Node:
    """A value in the document together with its key path (``plugins[0].config``)."""

    def __init__(self, value: Any, path: str, source: str) -> None:
        self.value = value
        self.path = path
        self.source = source

    def error(self, problem: str, hint: str = "") -> ConfigError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return ConfigError(f"{where}: {problem}", hint or "see the hlocal.yaml reference in README.md")

    def child(self, key: str | int) -> "Node":
        if isinstance(key, int):
            path = f"{self.path}[{key}]"
            return Node(self.value[key], path, self.source)
        path = f"{self.path}.{key}" if self.path else key
        return Node(self.value.get(key) if isinstance(self.value, dict) else None, path, self.source)

    # -- type checks -------------------------------------------------------
    def mapping(self, allowed: Iterable[str] | None = None, *, optional: bool = True) -> "Node":
        if self.value is None and optional:
            self.value = {}
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        for key in self.value:
            if not isinstance(key, str):
                raise self.error(f"keys must be strings, got {key!r}")
        if allowed is not None:
            allowed = list(allowed)
            unknown = [k for k in self.value if k not in allowed]
            if unknown:
                key = unknown[0]
                close = _closest(key, allowed)
                hint = f"did you mean '{close}'? " if close else ""
                raise self.child(key).error(
                    "unknown key", f"{hint}known keys here: {', '.join(allowed)}"
                )
        return self

    def items(self) -> list["Node"]:
        return [self.child(i) for i in range(len(self.value))]

    def list(self, *, optional: bool = True) -> "Node":
        if self.value is None and optional:
            self.value = []
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {describe(self.value)}")
        return self

    def string_list(self, *, single_ok: bool = True) -> list[str]:
        if isinstance(self.value, str) and single_ok:
            self.value = [self.value]
        self.list()
        return [item.string() for item in self.items()]

    def string(self, default: str | None = None, *, pattern: str | None = None, what: str = "") -> str:
        if self.value is None:
            if default is None:
                raise self.error("is required")
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, (str, int, float)):
            raise self.error(f"expected a string, got {describe(self.value)}")
        text = str(self.value)
        if pattern and not re.fullmatch(pattern, text):
            raise self.error(f"{text!r} is not {what or 'valid'}")
        return text

    def optional_string(self) -> str | None:
        return None if self.value is None else self.string()

    def choice(self, choices: Iterable[str], default: str | None = None) -> str:
        choices = list(choices)
        text = self.string(default)
        if text not in choices:
            raise self.error(f"{text!r} is not one of {', '.join(choices)}")
        return text

    def integer(self, default: int | None = None, *, low: int | None = None, high: int | None = None) -> int:
        if self.value is None:
            if default is None:
                raise self.error("is required")
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"expected an integer, got {describe(self.value)}")
        if low is not None and high is not None and not low <= self.value <= high:
            raise self.error(f"{self.value} is out of range {low}..{high}")
        if low is not None and self.value < low:
            raise self.error(f"{self.value} must be at least {low}")
        if high is not None and self.value > high:
            raise self.error(f"{self.value} must be at most {high}")
        return self.value

    def boolean(self, default: bool) -> bool:
        if self.value is None:
            return default
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {describe(self.value)}")
        return self.value

    def port(self, default: int) -> int:
        return self.integer(default, low=0, high=65535)

    def multi_map(self, *, lower_keys: bool = False) -> dict[str, str | tuple[str, ...]]:
        """name -> a string, or a list of strings (a header or query parameter sent several times)."""
        self.mapping()
        out: dict[str, str | tuple[str, ...]] = {}
        for key in self.value:
            child = self.child(key)
            name = key.lower() if lower_keys else key
            out[name] = tuple(child.string_list(single_ok=False)) if isinstance(child.value, list) else child.string()
        return out

    def string_map(self, *, lower_keys: bool = False) -> dict[str, str]:
        self.mapping()
        return {
            (key.lower() if lower_keys else key): self.child(key).string() for key in self.value
        }


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None
