"""testing/summary.py: the CI step summary from pytest's JUnit XML and `hlocal check --json`."""

from __future__ import annotations

import json

import pytest

from higress_local.testing.summary import cell, main, render_summary

from .test_junit import pytest_junit

CHECK = {"flavor": "envoy", "runnable": False, "plugins": [
    {"name": "cache", "runnable": True, "adaptations": ["a"], "notes": [], "problems": [],
     "emulations": [{"key": "redis", "refused": False}], "runs_on": {"native (stock Envoy)": True,
                                                                     "docker, flavor envoy": False}},
    {"name": "lb", "runnable": False, "problems": ["needs proxy_get_upstream_hosts"], "emulations": [],
     "runs_on": {"native (stock Envoy)": False}},
]}


def test_tests_outcomes_times_and_the_check_verdict(tmp_path):
    junit = pytest_junit(tmp_path, "import pytest\n\n@pytest.mark.parametrize('x', ['a|b'])\ndef test_p(x):\n"
                                   "    pass\n\ndef test_f():\n    assert 0, 'boom'\n")
    check = tmp_path / "check.json"
    check.write_text(json.dumps(CHECK))
    text = render_summary(junit, check)
    assert "**2 tests**: 1 passed, 1 failed in " in text
    assert "| `test_some::test_p[a\\|b]` | passed |" in text  # a | inside a cell is escaped
    assert "| `test_some::test_f` | **failed**: AssertionError: boom" in text
    assert "(gateway flavor envoy): a plugin cannot run" in text
    assert "| cache | runs with redis emulated (1 note in `hlocal check`) | native (stock Envoy) |" in text
    assert "| lb | **cannot run**: needs proxy_get_upstream_hosts | none |" in text


def test_no_junit_file_says_the_tests_never_ran(tmp_path):
    text = render_summary(tmp_path / "missing.xml", tmp_path / "missing.json")
    assert "No test results" in text and "hlocal check" not in text


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_a_bad_check_report_exits_2_with_a_hint(tmp_path, capsys, content):
    junit = pytest_junit(tmp_path, "def test_ok():\n    pass\n")
    check = tmp_path / "check.json"
    check.write_text(content)
    assert main([str(junit), "--check", str(check)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hint: pass what `hlocal check --json` printed" in err


def test_cell_escapes_pipes_and_newlines():
    assert cell("a|b\nc") == "a\\|b c"
