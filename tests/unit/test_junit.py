"""testing/junit.py reads the JUnit XML pytest really writes: every outcome, its time and message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from higress_local.errors import ConfigError
from higress_local.testing.junit import read_cases

TESTS = """
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2, "one is not two"

def test_skip():
    pytest.skip("not today")

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_error(broken):
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
"""


def pytest_junit(tmp_path, text: str):
    (tmp_path / "test_some.py").write_text(text)
    report = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hlocal",
                    f"--junitxml={report}", "test_some.py"], cwd=tmp_path, capture_output=True, timeout=120)
    return report


def test_every_outcome_pytest_writes(tmp_path):
    cases = read_cases(pytest_junit(tmp_path, TESTS))
    outcomes = {case.name: case.outcome for case in cases}
    assert outcomes == {"test_some::test_ok": "passed", "test_some::test_bad": "failed",
                        "test_some::test_skip": "skipped", "test_some::test_error": "error",
                        "test_some::test_xfail": "skipped"}
    bad = next(case for case in cases if case.name.endswith("test_bad"))
    assert "one is not two" in bad.message and "\n" not in bad.message
    assert all(case.seconds >= 0 for case in cases)


@pytest.mark.parametrize("text", ["not xml at all", "<html><body/></html>"])
def test_not_junit_is_a_config_error(tmp_path, text):
    bad = tmp_path / "junit.xml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_cases(bad)
    assert str(bad) in raised.value.message and "--junitxml" in raised.value.hint


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read JUnit XML"):
        read_cases(tmp_path / "nothing.xml")
