"""A plugin's CI: `hlocal test --junitxml` writes a JUnit file CI tools read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from higress_local.testing.junit import read_cases

pytestmark = pytest.mark.slow
TIMEOUT = 300.0
SMOKE = ("def test_reaches_the_backend(gateway, upstream):\n"
         "    gateway.get('/x')\n"
         "    assert upstream.last().path == '/x'\n\n"
         "def test_fails(gateway):\n"
         "    assert gateway.get('/x').status_code == 404\n\n"
         "def test_skipped():\n"
         "    import pytest\n"
         "    pytest.skip('not here')\n")


def logger_project(make_project, plugin_wasm, name: str, smoke: str = SMOKE, runtime: str | None = None):
    project = make_project({"gateway": {"port": 0}, "plugins": [{"name": "logger", "wasm": "logger.wasm"}]},
                           files={"logger.wasm": plugin_wasm("logger")}, name=name, runtime=runtime)
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_smoke.py").write_text(smoke)
    return project


def test_junitxml_is_written_where_asked(make_project, plugin_wasm) -> None:
    project = logger_project(make_project, plugin_wasm, "junit")
    result = project.hlocal("test", "--runtime", "native", "--junitxml", "reports/junit.xml", timeout=TIMEOUT)
    assert result.returncode == 1, result  # pytest's status: one test failed
    report = project.path / "reports" / "junit.xml"
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("3", "1", "1", "0")
    outcomes = {case.name.rsplit("::", 1)[1]: case.outcome for case in read_cases(report)}
    assert outcomes == {"test_reaches_the_backend": "passed", "test_fails": "failed", "test_skipped": "skipped"}
    assert "generated xml file" in result.stdout and str(report) in result.stdout
