"""testing/compare.py: the per-test table of two runtimes' outcomes, and what --compare refuses."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.errors import ExitCode
from higress_local.testing.compare import MISSING, Side, compare_rows, table_lines


def side(runtime: str, **outcomes: str) -> Side:
    return Side(runtime, f"the {runtime} gateway", 0, {f"t::{k}": v for k, v in outcomes.items()})


def test_rows_keep_the_order_tests_ran_and_mark_tests_one_side_lacks():
    rows = compare_rows(side("native", a="passed", b="failed"), side("docker", c="passed", a="passed"))
    assert rows == [("t::a", "passed", "passed"), ("t::b", "failed", MISSING), ("t::c", MISSING, "passed")]


def test_the_table_names_both_gateways_and_counts_what_differs():
    lines, differ = table_lines(side("native", a="passed", b="passed"), side("docker", a="passed", b="failed"))
    assert differ == 1
    assert lines[:2] == ["native: the native gateway", "docker: the docker gateway"]
    assert lines[3].split() == ["test", "native", "docker"]
    assert [line.split() for line in lines[4:6]] == [["t::a", "passed", "passed"], ["t::b", "passed", "failed",
                                                                                       "differs"]]
    assert lines[-1] == "1 of 2 tests differ between native and docker"


def test_the_same_outcomes_everywhere_say_so():
    lines, differ = table_lines(side("native", a="skipped"), side("docker", a="skipped"))
    assert differ == 0 and lines[-1] == "all 1 tests have the same outcome on native and docker"


@pytest.fixture
def project_dir(tmp_path):
    (tmp_path / "hlocal.yaml").write_text(yaml.safe_dump(
        {"name": "cmp", "runtime": "native", "plugins": [{"name": "p", "wasm": "p.wasm"}]}))
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["--compare", "native"], "--compare native is the runtime the tests already run on"),
    (["--runtime", "docker", "--compare", "docker"], "--compare docker is the runtime the tests already run on"),
    (["--compare", "docker", "--keep"], "--keep and --compare do not go together"),
])
def test_compare_refuses_before_starting_anything(project_dir, args, message):
    result = CliRunner().invoke(main, ["-f", str(project_dir), "test", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"error: {message}" in result.output
