"""schema.load_yaml: alias bombs, deep nesting and recursive aliases are refused before they are built."""

from __future__ import annotations

import resource
import time

import pytest

from higress_local.config import schema
from higress_local.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: each level lists the previous one `width` times (9^10 values expanded)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + f"\nplugins:\n  - {{name: p, wasm: p.wasm, config: {{lol: *l{levels}}}}}\n"


def load_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        schema.load_yaml(text, "hlocal.yaml")
    assert caught.value.exit_code == 2
    return caught.value


def test_an_alias_bomb_is_refused_fast_and_small() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = load_error(billion_laughs())
    assert time.monotonic() - started < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: < 100 MB grown
    assert error.message == "hlocal.yaml: line 7: aliases expand the document past 1,000,000 values"
    assert "1,000,000 values" in error.hint and "alias (*name)" in error.hint


def test_a_long_string_repeated_by_aliases_is_refused() -> None:
    text = "s: &s " + "x" * 1_000_000 + "\nmany: [" + ", ".join(["*s"] * 20) + "]\n"
    error = load_error(text)
    assert error.message == "hlocal.yaml: line 2: aliases expand the document past 16 MiB of text"


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 20000 + "]" * 20000 + "\n",  # flow style
        "x:\n  " + "- " * 20000 + "leaf\n",  # block sequences on one line
        "x: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n",
    ],
    ids=["flow-lists", "block-lists", "flow-mappings"],
)
def test_twenty_thousand_levels_are_refused_without_a_recursion_error(text: str) -> None:
    error = load_error(text)
    assert "nested deeper than 100 levels" in error.message and error.message.startswith("hlocal.yaml: line ")


def test_aliases_that_nest_past_the_depth_are_refused() -> None:
    # Each file level is shallow; the aliases stack them 60 x 3 = 180 levels deep.
    lines = ["a0: &a0 " + "[" * 59 + "1" + "]" * 59]
    for level in range(1, 3):
        lines.append(f"a{level}: &a{level} " + "[" * 59 + f"*a{level - 1}" + "]" * 59)
    error = load_error("\n".join(lines) + "\n")
    assert "nested deeper than 100 levels once aliases are expanded" in error.message


def test_a_recursive_alias_is_refused() -> None:
    error = load_error("x: &a [1, *a]\n")
    assert error.message == "hlocal.yaml: line 1: an alias refers to a node that contains it (a recursive alias)"
    error = load_error("x: &m {self: *m}\n")
    assert "recursive alias" in error.message


def test_ordinary_aliases_and_merge_keys_still_work() -> None:
    text = """\
defaults: &defaults {timeout_ms: 100, headers: {x-env: test}}
routes:
  - {name: a, <<: *defaults}
  - {name: b, <<: *defaults, timeout_ms: 5}
shared: [&one 1, *one, *one]
"""
    data = schema.load_yaml(text, "hlocal.yaml")
    assert data["routes"][0] == {"name": "a", "timeout_ms": 100, "headers": {"x-env": "test"}}
    assert data["routes"][1]["timeout_ms"] == 5
    assert data["shared"] == [1, 1, 1]
    # A key given twice in the mapping itself is still an error; one from the merge is not.
    assert "duplicate key 'a'" in load_error("d: &d {a: 1}\nm: {<<: *d, a: 2, a: 3}\n").message


def test_the_limits_are_exact() -> None:
    def nested(levels: int) -> str:  # the root mapping is level 1, its value level 2 ...
        return "x: " + "[" * (levels - 2) + "1" + "]" * (levels - 2) + "\n"

    assert schema.load_yaml(nested(schema.MAX_DEPTH), "f") is not None
    assert "nested deeper" in load_error(nested(schema.MAX_DEPTH + 1)).message
    # Values: the root mapping 1, three keys 3, x 1 + 999, y 1 + 998 x 1,000 (each alias counts x
    # again), z 1 + extra: 1,000,000 exactly with extra = 994.
    def counted(extra: int) -> str:
        return ("x: &x [" + ", ".join(["1"] * 999) + "]\ny: [" + ", ".join(["*x"] * 998) + "]\n"
                "z: [" + ", ".join(["1"] * extra) + "]\n")

    assert len(schema.load_yaml(counted(994), "f")["z"]) == 994
    assert "past 1,000,000 values" in load_error(counted(995)).message
