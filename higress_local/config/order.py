"""The plugin configuration JSON exactly as Higress delivers it, and what that changes for a plugin.

Higress turns a WasmPlugin's `defaultConfig` and `matchRules` into Istio's `pluginConfig`, a
protobuf `Struct` (alibaba/higress pkg/ingress/config/ingress_config.go, `convertIstioWasmPlugin`:
each rule's config is a Struct and `_match_route_` / `_match_domain_` / `_rules_` are added as Struct
fields), and Istio serialises that Struct to the JSON string the plugin reads. A `Struct` is a
protobuf map, and the Go JSON marshallers write map entries sorted by key; its numbers are doubles.
So on Higress a plugin sees: keys of every object sorted (nested ones too, rules included), integral
numbers without a fraction, integers past 2**53 rounded. hlocal delivers the same on purpose, and
`hlocal check` warns where that may surprise an author: a mapping whose written order looks meaningful
(keys that are patterns, as in consumer or model mappings) arrives reordered.
"""

from __future__ import annotations

import json
import re
from typing import Any

EXACT_INTEGERS = 2 ** 53
# Keys that look like patterns: an author listing them may expect first-match-wins in written order.
PATTERN_KEY = re.compile(r"[*?^$\[\]|\\]|^~|/.*/")


def higress_value(value: Any) -> Any:
    """A config value as a protobuf Struct round trip leaves it (numbers become doubles)."""
    if isinstance(value, dict):
        return {str(k): higress_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [higress_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        as_double = float(value)
        return int(as_double) if as_double.is_integer() else as_double
    return value


def higress_json(config: dict[str, Any]) -> str:
    """The configuration string a plugin receives on Higress: keys sorted, compact, numbers as doubles."""
    return json.dumps(higress_value(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def delivery_warnings(config: Any, where: str = "config") -> list[str]:
    """Where the delivered JSON differs from what the author wrote in a way that may matter."""
    out: list[str] = []
    _walk(config, where, out)
    return out


def _walk(value: Any, where: str, out: list[str]) -> None:
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        if len(keys) > 1 and keys != sorted(keys) and any(PATTERN_KEY.search(k) for k in keys):
            out.append(f"{where}: the keys {', '.join(repr(k) for k in keys)} look like patterns listed in "
                       f"order, but Higress delivers every object with its keys sorted "
                       f"({', '.join(repr(k) for k in sorted(keys))}); a plugin that tries them in order "
                       f"sees that order (use a list to keep an order)")
        for key, item in value.items():
            _walk(item, f"{where}.{key}", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", out)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_INTEGERS:
        out.append(f"{where}: {value} is past 2**53; Higress carries numbers as doubles, so the plugin "
                   f"receives {int(float(value))} (quote it as a string to keep every digit)")
