"""Small validators for parsed YAML: every error names the key path it is about."""

from __future__ import annotations

import re
from typing import Any, Iterable

from .errors import ConfigError

_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    type(None): "nothing (null)",
}


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
