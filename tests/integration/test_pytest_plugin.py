"""hlocal's pytest plugin: small smoke suites run by pytester in subprocesses, against real stacks on both runtimes."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from support import Project

pytest_plugins = ["pytester"]

INNER_TIMEOUT = 300  # seconds for one inner pytest session (it starts a stack)
# pytester points HOME at its directory; the docker CLI must still find its Compose plugin there.
DOCKER_CONFIG = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")


@pytest.fixture
def smoke(pytester: pytest.Pytester, make_project, plugin_wasm, runtime, monkeypatch) -> Project:
    """An hlocal.yaml in pytester's directory (logger -> headers in front of the mock); make_project's
    cleanup stops it and insists nothing is left."""
    monkeypatch.setenv("DOCKER_CONFIG", DOCKER_CONFIG)
    config = {
        "name": f"pt-{runtime}-{pytester.path.name}".lower().replace("_", "-")[:63],
        "runtime": runtime,
        "gateway": {"port": 0, "flavor": "envoy"},  # docker: the Higress image cannot be pulled here
        "plugins": [
            {"name": "logger", "wasm": "logger.wasm", "config": {"hello": "world"}},
            {"name": "headers", "wasm": "headers.wasm",
             "config": {"request_headers": {"x-hlocal": "added"}, "response_headers": {"x-out": "1"}}},
        ],
    }
    for name in ("logger", "headers"):
        shutil.copyfile(plugin_wasm(name), pytester.path / f"{name}.wasm")
    project = Project(path=pytester.path, config=config)
    project.write()
    make_project.made.append(project)
    return project


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=INNER_TIMEOUT)


def assert_nothing_left(project: Project) -> None:
    assert project.leftovers() == []
    assert project.state() is None


def test_a_smoke_suite_passes_and_the_config_marker_is_restored(smoke: Project, pytester, runtime) -> None:
    other = "docker" if runtime == "native" else "native"
    smoke.config["runtime"] = other  # --hlocal-runtime must win over hlocal.yaml
    smoke.write()
    yaml_before = (smoke.path / "hlocal.yaml").read_text()
    pytester.makepyfile(test_smoke=f"""
        import pytest

        def test_gateway_and_upstream(hlocal_stack, gateway, upstream, plugin_logs):
            assert hlocal_stack.runtime_name == "{runtime}"
            response = gateway.get("/api/items?id=7", headers={{"x-in": "1"}})
            assert response.status_code == 200
            assert response.headers["x-out"] == "1"
            received = upstream.last()
            assert (received.method, received.path, received.query) == ("GET", "/api/items", {{"id": ["7"]}})
            assert received.headers["X-Hlocal"] == "added" and received.headers.getall("x-in") == ["1"]
            assert upstream.of(response).seq == received.seq
            plugin_logs.assert_logged(r"logger: GET /api/items")
            plugin_logs.assert_not_logged(r"logger: GET /elsewhere")
            assert any(m.startswith("logger: GET /api/items") for m in plugin_logs.messages)

        def test_json_bodies_and_repeated_headers(hlocal_stack, gateway, upstream):
            gateway.post("/api/orders", json={{"item": "tea"}})
            assert upstream.last().json == {{"item": "tea"}}
            exchange = hlocal_stack.request("GET", "/api/multi", [("x-multi", "a"), ("x-multi", "b")])
            assert exchange.upstream.headers.getall("x-multi") == ["a", "b"] == exchange.upstream["headers"]["x-multi"]
            assert type(exchange.upstream) is type(upstream.last())
            assert upstream.last().headers.getall("x-multi") == ["a", "b"]
            assert len(upstream) == 2
            upstream.clear()
            assert upstream.all() == []

        @pytest.mark.hlocal_config(plugin="headers", config={{"request_headers": {{"x-hlocal": "marked"}}}})
        def test_marker_config_is_live(gateway, upstream):
            gateway.get("/api/marked")
            assert upstream.last().headers["x-hlocal"] == "marked"

        @pytest.mark.hlocal_config(plugin="headers", config={{"reject": True}})
        def test_marker_config_the_plugin_rejects(gateway):
            pass

        def test_config_is_restored_after_the_marked_tests(gateway, upstream):
            gateway.get("/api/after")
            assert upstream.last().headers["x-hlocal"] == "added"
    """)
    result = run_inner(pytester, "-v", "--hlocal-runtime", runtime)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*hlocal: plugin 'headers' rejected its configuration*previous version still serves*"])
    assert (smoke.path / "hlocal.yaml").read_text() == yaml_before
    assert_nothing_left(smoke)


def test_a_failure_shows_client_response_and_backend_request_and_teardown_runs(smoke: Project, pytester) -> None:
    smoke.config["gateway"]["inspect"] = False  # the report without the inspector (natively capture is on by default)
    smoke.write()
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def broken(hlocal_stack):
            raise RuntimeError("the user's fixture broke after the stack started")
    """)
    pytester.makepyfile(test_smoke="""
        def test_header_the_plugin_did_not_add(gateway, upstream):
            gateway.get("/api/x", headers={"x-in": "1"})
            assert upstream.last().headers["x-hlocal"] == "expected-by-test"

        def test_with_a_broken_fixture(broken, gateway):
            gateway.get("/never")
    """)
    result = run_inner(pytester)
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*assert 'added' == 'expected-by-test'*",
        "*- expected-by-test",
        "*+ added",
        "*hlocal: last exchange (client response, then what the backend received)*",
        "> GET http://127.0.0.1:*/api/x",
        "< 200 *",
        "< x-out: 1",
        "backend received: GET /api/x",
        "  x-in: 1",
        "  x-hlocal: added",
        "*hlocal: plugin logs during the test*",
        "??:??:??.??? logger: logger: GET /api/x",  # time, plugin name, its message; no Envoy prefix
    ])
    result.stdout.fnmatch_lines(["*RuntimeError: the user's fixture broke after the stack started"])
    assert_nothing_left(smoke)


def test_a_failure_with_capture_on_shows_the_inspector_diff_of_the_last_request(smoke: Project, pytester,
                                                                                runtime) -> None:
    if runtime == "docker":  # natively capture is on by default
        smoke.config["gateway"]["inspect"] = True
        smoke.write()
    pytester.makepyfile(test_smoke="""
        def test_header_the_plugin_did_not_add(gateway, upstream):
            gateway.get("/api/diffed", headers={"x-in": "1"})
            assert upstream.last().headers["x-hlocal"] == "expected-by-test"
    """)
    result = run_inner(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*hlocal: last exchange, as the inspector saw it*",  # one section: the views and the diff
        "#* GET /api/diffed -> 200 *",
        "1. request as the client sent it",
        "2. request as it left the plugins for the upstream",
        "  + x-hlocal: added",  # the headers plugin's change, marked as added
        "4. response as the client got it",
        "  + x-out: 1",
        "changes: *",
    ])
    assert_nothing_left(smoke)


def test_a_stack_failing_half_way_is_stopped_and_reported(smoke: Project, pytester) -> None:
    smoke.config["plugins"][1]["config"] = {"reject": True}  # Envoy starts, then the plugin refuses its config
    smoke.write()
    pytester.makepyfile(test_smoke="""
        def test_one(gateway):
            gateway.get("/")

        def test_two(upstream):
            pass
    """)
    result = run_inner(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*hlocal: plugin 'headers' rejected its configuration*",
        "hint: *",
    ])
    assert "Traceback" not in result.stdout.str()
    assert_nothing_left(smoke)


def test_attach_uses_the_stack_hlocal_up_started_and_leaves_it(smoke: Project, pytester, monkeypatch) -> None:
    pytester.makepyfile(test_smoke="""
        import json, os

        def test_same_stack(hlocal_stack, gateway, upstream):
            assert hlocal_stack.url == os.environ["EXPECTED_URL"]
            assert gateway.get("/attached").status_code == 200
            assert upstream.last().path == "/attached"
    """)
    not_running = run_inner(pytester, "--hlocal-attach")
    not_running.assert_outcomes(errors=1)
    not_running.stdout.fnmatch_lines([f"*hlocal: stack '{smoke.name}' is not running*", "hint: *hlocal up*"])
    assert_nothing_left(smoke)

    up = smoke.hlocal("up")
    assert up.returncode == 0, up
    before = smoke.state()
    monkeypatch.setenv("EXPECTED_URL", f"http://127.0.0.1:{before['gateway_port']}")
    result = run_inner(pytester, "--hlocal-attach")
    result.assert_outcomes(passed=1)
    assert smoke.state() == before
    assert smoke.hlocal("status", "--json").json()["running"] is True
    down = smoke.hlocal("down")
    assert down.returncode == 0, down
    assert_nothing_left(smoke)


def test_keep_leaves_the_stack_running(smoke: Project, pytester) -> None:
    pytester.makepyfile(test_smoke="""
        def test_request(gateway):
            assert gateway.get("/kept").status_code == 200
    """)
    result = run_inner(pytester, "--hlocal-keep")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"hlocal: stack '{smoke.name}' * left running (--hlocal-keep)*"])
    assert smoke.hlocal("status", "--json").json()["running"] is True
    answered = smoke.hlocal("request", "GET", "/after-the-session", "--json")
    assert answered.returncode == 0 and answered.json()["response"]["status"] == 200, answered
    down = smoke.hlocal("down")
    assert down.returncode == 0, down
    assert_nothing_left(smoke)


# -- without a stack: nothing starts, errors are clear -------------------------------

def test_the_plugin_is_inert_for_suites_that_do_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        def test_plain():
            assert 1 + 1 == 2
    """)
    result = run_inner(pytester, "--strict-markers")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".hlocal").exists()
    markers = run_inner(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.hlocal_config(plugin=None, config=None, rules=None):*"])
    options = run_inner(pytester, "--help")
    options.stdout.fnmatch_lines(["hlocal: smoke tests against a live gateway:", "*--hlocal-file=PATH*",
                                  "*--hlocal-runtime=*", "*--hlocal-attach*", "*--hlocal-keep*"])


def test_a_missing_hlocal_yaml_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_smoke="""
        def test_needs_the_gateway(gateway):
            pass
    """)
    result = run_inner(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*hlocal: no hlocal.yaml in * or its parents*",
                                 "hint: pass --hlocal-file PATH, or create one with `hlocal init`"])


def test_hlocal_test_without_pytest_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    from higress_local.testing import testrun
    from higress_local.cli.main import main

    (tmp_path / "hlocal.yaml").write_text(textwrap.dedent("""
        plugins: [{name: p, wasm: p.wasm}]
    """))
    monkeypatch.setattr(testrun, "find_spec", lambda name: None)
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "test"])
    assert result.exit_code == 3, result.output
    assert "error: pytest is not installed in hlocal's environment" in result.output
    assert "-m pip install pytest" in result.output


# -- one stack per session: two sessions of one project, and pytest-xdist workers -------------

NAME_RECORDER = """
    import os
    from pathlib import Path

    def test_{n}(hlocal_stack, gateway, upstream):
        assert gateway.get("/{n}").status_code == 200
        assert upstream.last().path == "/{n}"
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        Path(os.environ["NAMES_DIR"], worker + "-{n}").write_text(
            hlocal_stack.project.name + " " + str(hlocal_stack.project.state_dir) + " " + hlocal_stack.url)
"""


def _recorded(names_dir: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text().split() for p in names_dir.iterdir()}


def test_each_session_gets_a_stack_of_its_own(smoke: Project, pytester, runtime, monkeypatch, tmp_path) -> None:
    if runtime == "docker":
        pytest.skip("the session naming is runtime-independent (Stack.for_session); covered on native")
    monkeypatch.setenv("NAMES_DIR", str(tmp_path))
    pytester.makepyfile(test_smoke=NAME_RECORDER.format(n="one"))
    sessions = []
    for _ in range(2):
        run_inner(pytester).assert_outcomes(passed=1)
        sessions.append(_recorded(tmp_path)["main-one"])
    (first, first_dir, _), (second, second_dir, _) = sessions
    assert first != second  # two sessions of one project never share a stack
    for name, state_dir in ((first, first_dir), (second, second_dir)):
        assert name.startswith(f"{smoke.name[:55]}-") and name != smoke.name
        assert not Path(state_dir).exists()  # its .hlocal/<name>/ went with it
    assert_nothing_left(smoke)


def test_pytest_xdist_runs_one_stack_per_worker(smoke: Project, pytester, runtime, monkeypatch, tmp_path) -> None:
    if runtime == "docker":
        pytest.skip("the session naming is runtime-independent (Stack.for_session); covered on native")
    monkeypatch.setenv("NAMES_DIR", str(tmp_path))
    pytester.makepyfile(test_a=NAME_RECORDER.format(n="a"), test_b=NAME_RECORDER.format(n="b"))
    result = run_inner(pytester, "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=2)
    recorded = _recorded(tmp_path)
    workers = {key.split("-", 1)[0] for key in recorded}
    assert workers == {"gw0", "gw1"}, recorded  # xdist's load scheduling gives each worker one test
    names = {values[0] for values in recorded.values()}
    urls = {values[2] for values in recorded.values()}
    assert len(names) == 2 and len(urls) == 2
    for key, (name, _state, _url) in recorded.items():
        assert name.startswith(smoke.name[:40]) and f"-{key.split('-', 1)[0]}-" in name
    assert_nothing_left(smoke)
