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


AGREE = ("def test_reaches_the_backend(gateway, upstream):\n"
         "    gateway.get('/x')\n"
         "    assert upstream.last().path == '/x'\n\n"
         "def test_unknown_path_is_served_by_the_mock(gateway):\n"
         "    assert gateway.get('/nothing/here').status_code == 200\n")
# The runtime's name is what only the docker side has: this test passes on native and fails on docker.
DIFFER = AGREE + ("\ndef test_runs_on_native(hlocal_stack):\n"
                  "    assert hlocal_stack.runtime_name == 'native'\n")


@pytest.fixture
def compared(make_project, plugin_wasm, docker_images):
    def run(smoke: str, *extra: str):
        project = logger_project(make_project, plugin_wasm, "compare", smoke)
        project.config["runtime"] = "native"
        project.config["gateway"]["flavor"] = "envoy"  # docker: the stock Envoy image (no Higress image here)
        project.write()
        result = project.hlocal("test", "--compare", "docker", *extra, timeout=2 * TIMEOUT)
        return project, result
    return run


@pytest.mark.docker
def test_compare_docker_outcomes_agree(compared, docker_images) -> None:
    project, result = compared(AGREE, "--junitxml", "out/junit.xml")
    assert result.returncode == 0, result
    assert f"hlocal: {project.name} is up on the native runtime" in result.stderr
    assert f"hlocal: {project.name} is up on the docker runtime" in result.stderr
    out = result.stdout
    assert f"docker: Higress 2.2.4, flavor envoy, image {docker_images['HLOCAL_ENVOY_IMAGE']}" in out
    assert "native: stock Envoy (bundled)" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("tests.test_smoke::")]
    assert [row[1:] for row in rows] == [["passed", "passed"], ["passed", "passed"]], out
    assert "all 2 tests have the same outcome on native and docker" in out
    assert {c.outcome for c in read_cases(project.path / "out" / "junit.xml")} == {"passed"}
    assert len(read_cases(project.path / "out" / "junit-docker.xml")) == 2


@pytest.mark.docker
def test_compare_docker_reports_a_differing_test_and_exits_1(compared) -> None:
    project, result = compared(DIFFER)
    assert result.returncode == 1, result
    rows = {line.split()[0].split("::")[1]: line.split()[1:] for line in result.stdout.splitlines()
            if line.startswith("tests.test_smoke::")}
    assert rows == {"test_reaches_the_backend": ["passed", "passed"],
                    "test_unknown_path_is_served_by_the_mock": ["passed", "passed"],
                    "test_runs_on_native": ["passed", "failed", "differs"]}, result.stdout
    assert "1 of 3 tests differ between native and docker" in result.stdout
