"""The CI step summary: a Markdown table of the tests (JUnit XML) and the plugins' `hlocal check` verdict.

    python -m higress_local.testing.summary junit.xml [--check check.json] >> "$GITHUB_STEP_SUMMARY"

action.yml runs it after `hlocal test --junitxml`; check.json is what `hlocal check --json` printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, HlocalError
from .junit import Case, read_cases

OUTCOME_ORDER = ("passed", "failed", "error", "skipped")


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (a parametrize id may hold a `|`)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def tests_section(cases: Sequence[Case]) -> list[str]:
    counts = Counter(case.outcome for case in cases)
    total = sum(case.seconds for case in cases)
    tally = ", ".join(f"{counts[o]} {o}" for o in OUTCOME_ORDER if counts[o])
    lines = [f"**{len(cases)} tests**: {tally or 'none ran'} in {total:.2f} s", ""]
    if cases:
        lines += ["| Test | Outcome | Time (s) |", "|---|---|---|"]
        for case in cases:
            outcome = case.outcome if case.outcome in ("passed", "skipped") else f"**{case.outcome}**"
            why = f": {cell(case.message)}" if case.message and case.outcome != "passed" else ""
            lines.append(f"| `{cell(case.name)}` | {outcome}{why} | {case.seconds:.2f} |")
    return lines


def verdict(plugin: dict[str, Any]) -> str:
    """One plugin's check verdict in a few words: runs or not, emulated or adapted, on which gateways."""
    if not plugin.get("runnable"):
        problems = plugin.get("problems") or ["cannot run"]
        return "**cannot run**: " + cell("; ".join(problems))
    words = ["runs"]
    emulated = [str(e.get("key")) for e in plugin.get("emulations") or [] if not e.get("refused")]
    if emulated:
        words.append("with " + ", ".join(cell(e) for e in emulated) + " emulated")
    notes = len(plugin.get("adaptations") or []) + len(plugin.get("notes") or [])
    if notes:
        words.append(f"({notes} note{'s' if notes != 1 else ''} in `hlocal check`)")
    return " ".join(words)


def check_section(report: dict[str, Any]) -> list[str]:
    flavor = report.get("flavor", "?")
    lines = [f"**hlocal check** (gateway flavor {flavor}): "
             f"{'every plugin runs' if report.get('runnable') else 'a plugin cannot run'}", "",
             "| Plugin | Verdict | Runs on |", "|---|---|---|"]
    for plugin in report.get("plugins", []):
        runs_on = ", ".join(where for where, ok in (plugin.get("runs_on") or {}).items() if ok) or "none"
        lines.append(f"| {cell(str(plugin.get('name')))} | {verdict(plugin)} | {cell(runs_on)} |")
    return lines


def read_check(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the check report {path}: {exc}",
                          "pass what `hlocal check --json` printed") from exc
    if not isinstance(report, dict) or not isinstance(report.get("plugins"), list):
        raise ConfigError(f"{path} is not a `hlocal check --json` report", "pass what `hlocal check --json` printed")
    return report


def render_summary(junit: Path, check: Path | None = None, title: str = "hlocal test") -> str:
    """The whole summary; a missing JUnit file means the tests never ran (a build or start-up failed)."""
    lines = [f"## {title}", ""]
    if junit.exists():
        lines += tests_section(read_cases(junit))
    else:
        lines.append("No test results: `hlocal test` stopped before pytest wrote its JUnit XML (see the step's log).")
    if check is not None and check.exists() and check.stat().st_size:
        lines += ["", *check_section(read_check(check))]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m higress_local.testing.summary",
                                     description="Markdown summary of hlocal test's JUnit XML and hlocal check.")
    parser.add_argument("junit", type=Path, help="the file `hlocal test --junitxml` wrote")
    parser.add_argument("--check", type=Path, help="what `hlocal check --json` printed")
    parser.add_argument("--title", default="hlocal test", help="the summary's heading")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render_summary(args.junit, args.check, args.title))
    except HlocalError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
