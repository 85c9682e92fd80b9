"""`${VAR}` / `${VAR:-default}` in hlocal.yaml, as Docker Compose interpolates its files.

Substitution runs on the parsed document's string values (never on keys or on the YAML text), so
a variable's value can not change the document's structure. Forms (Compose's, see
docs.docker.com/reference/compose-file/interpolation/):
  ${VAR}            the value; VAR unset → ConfigError naming VAR and the key path
  ${VAR:-default}   default when VAR is unset or empty
  ${VAR-default}    default when VAR is unset
  ${VAR:?message}   error with `message` when VAR is unset or empty
  ${VAR?message}    error with `message` when VAR is unset
  $$                a literal $ (a lone $ not followed by { stays as it is: regexes use it)
A value that is exactly one `${...}` and reads as an integer or true/false becomes one (so
`port: ${PORT:-10000}` is a port), except inside a plugin's `config` and `rules`, whose JSON types
are the plugin's business: there the value stays a string.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import ConfigError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(r"\$\$|\$\{(?P<body>[^{}]*)\}")
_BODY = re.compile(rf"(?P<name>{_NAME})(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?\Z", re.S)
_INT = re.compile(r"[+-]?\d{1,18}\Z")
_KEEP_TYPES = ("config", "rules")  # under plugins[i]: the plugin's own JSON


def expand(doc: Any, env: Mapping[str, str], source: str) -> Any:
    """A copy of `doc` with every string value interpolated; ConfigError (exit 2) on an unset variable."""
    return _walk(doc, env, source, "", coerce=True)


def _walk(value: Any, env: Mapping[str, str], source: str, path: str, coerce: bool) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            keep = path.startswith("plugins[") and path.count(".") == 0 and key in _KEEP_TYPES
            out[key] = _walk(item, env, source, child, coerce and not keep)
        return out
    if isinstance(value, list):
        return [_walk(item, env, source, f"{path}[{i}]", coerce) for i, item in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        return expand_text(value, env, f"{source}: {path or 'the document'}", coerce=coerce)
    return value


def expand_text(text: str, env: Mapping[str, str], where: str, coerce: bool = False) -> Any:
    """One string interpolated; with `coerce`, a lone `${...}` that reads as an int or bool becomes one."""
    whole = _TOKEN.fullmatch(text) is not None and text != "$$"

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return _resolve(match.group("body"), env, where)

    result = _TOKEN.sub(replace, text)
    if coerce and whole:
        if _INT.match(result):
            return int(result)
        if result in ("true", "false"):
            return result == "true"
    return result


def _resolve(body: str, env: Mapping[str, str], where: str) -> str:
    match = _BODY.match(body)
    if match is None:
        raise ConfigError(f"{where}: invalid interpolation ${{{body}}}",
                          "use ${VAR}, ${VAR:-default} or ${VAR:?message}; write $$ for a literal $")
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = env.get(name)
    if op == ":-":
        return value if value else arg
    if op == "-":
        return value if value is not None else arg
    if op in (":?", "?"):
        if value is None or (op == ":?" and not value):
            raise ConfigError(f"{where}: ${{{name}}} is required: {arg or 'not set'}",
                              f"export {name}=... before running hlocal")
        return value
    if value is None:
        raise ConfigError(f"{where}: environment variable {name} is not set",
                          f"export {name}=..., or give a default: ${{{name}:-value}}")
    return value

