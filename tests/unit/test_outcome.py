"""One outcome for a command that ends by an error or a signal: the CLI prints it, the agent sends it."""

from __future__ import annotations

import signal

import pytest
from click.testing import CliRunner

from higress_local.agent.wire import print_outcome
from higress_local.cli.main import main
from higress_local.cli import options
from higress_local.errors import ExitCode, PluginError, Stopped, WaitTimeout, outcome_of

ENDS = [
    pytest.param(PluginError("plugin 'x' failed", "fix plugins[].config"), 4,
                 "error: plugin 'x' failed\nhint: fix plugins[].config\n", id="with-hint"),
    pytest.param(WaitTimeout("timed out after 5 s"), 5, "error: timed out after 5 s\n", id="without-hint"),
    pytest.param(KeyboardInterrupt(), 130, "interrupted\n", id="ctrl-c"),
    pytest.param(Stopped(signal.SIGTERM, "SIGTERM", ExitCode.TERMINATED), 143, "stopped by SIGTERM\n", id="sigterm"),
]


@pytest.mark.parametrize(("end", "code", "shown"), ENDS)
def test_the_cli_prints_the_outcome_the_agent_would_send(monkeypatch, capsys, end, code, shown):
    def load_project(*args, **kwargs):
        raise end

    monkeypatch.setattr(options, "load_project", load_project)
    result = CliRunner().invoke(main, ["status"])
    assert (result.exit_code, result.stderr, result.stdout) == (code, shown, "")
    sent = outcome_of(end)  # what runtime/agent.py answers for a reload that ended so
    assert sent["exit"] == code
    assert print_outcome(sent) == code
    assert capsys.readouterr().err == shown


def test_an_exception_hlocal_does_not_know_has_no_outcome():
    assert outcome_of(RuntimeError("a bug")) is None


def test_the_agents_output_lines_come_before_the_outcome(capsys):
    assert print_outcome({"exit": 0, "out": ["reloaded p1"]}) == 0
    assert capsys.readouterr().out == "reloaded p1\n"
