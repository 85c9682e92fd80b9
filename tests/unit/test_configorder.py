"""Plugin configs reach the plugin as Higress delivers them (protobuf Struct → JSON), and check says so."""

from __future__ import annotations

import json

from higress_local.config.order import delivery_warnings, higress_json


def test_keys_are_sorted_at_every_depth_and_output_is_compact():
    text = higress_json({"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": True}})
    assert text == '{"a":{"c":true,"z":[{"x":2,"y":1}]},"b":1}'


def test_numbers_behave_as_doubles():
    assert json.loads(higress_json({"n": 2.0, "f": 1.5, "big": 2 ** 53 + 1})) == {"n": 2, "f": 1.5, "big": 2 ** 53}
    assert higress_json({"n": 2.0}) == '{"n":2}'


def test_non_ascii_text_is_kept_as_is():
    assert higress_json({"greeting": "你好"}) == '{"greeting":"你好"}'


def test_pattern_keys_written_out_of_order_are_warned_with_their_path():
    warnings = delivery_warnings({"modelMapping": {"gpt-4*": "qwen-max", "*": "qwen-turbo"}}, "plugins[0].config")
    assert len(warnings) == 1
    assert warnings[0].startswith("plugins[0].config.modelMapping: the keys 'gpt-4*', '*'")
    assert "'*', 'gpt-4*'" in warnings[0]


def test_plain_keys_and_already_sorted_patterns_are_not_warned():
    assert delivery_warnings({"zeta": 1, "alpha": 2}) == []
    assert delivery_warnings({"m": {"*": "a", "gpt-*": "b"}}) == []


def test_large_integers_are_warned():
    warnings = delivery_warnings({"ids": [2 ** 60]})
    assert warnings and "config.ids[0]" in warnings[0] and "2**53" in warnings[0]
