"""`hlocal test --compare RUNTIME`: the same smoke tests on two runtimes, one after the other, and a table of
each test's outcome on both. Exit 1 when an outcome differs: the fidelity check a user with the real Higress
image runs in CI."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config.project import Project
from ..errors import ConfigError
from ..higress import releases
from ..runtime.images import gateway_image
from ..stack import choose_runtime_name, resolve_flavor
from .junit import Case, read_cases
from .testrun import run_smoke_tests

MISSING = "-"  # a test one side did not run (collected on one runtime only, or the run stopped early)


@dataclass(frozen=True)
class Side:
    """One runtime's run: what it is, pytest's exit status, each test's outcome by name."""

    runtime: str
    label: str
    code: int
    outcomes: dict[str, str]


def describe(project: Project, runtime: str) -> str:
    """The gateway a runtime runs, with the Higress release it stands for (flavor and image from hlocal.yaml)."""
    release = releases.release(project.gateway.higress).label
    if runtime == "native":
        return f"stock Envoy ({project.gateway.envoy}); plugins judged against {release}"
    flavor = resolve_flavor(project, runtime)
    return f"{release}, flavor {flavor}, image {gateway_image(project, flavor)}"


def compare_rows(first: Side, second: Side) -> list[tuple[str, str, str]]:
    """(test, outcome on first, outcome on second) for every test either side ran, in the order they ran."""
    names = list(first.outcomes) + [name for name in second.outcomes if name not in first.outcomes]
    return [(name, first.outcomes.get(name, MISSING), second.outcomes.get(name, MISSING)) for name in names]


def table_lines(first: Side, second: Side) -> tuple[list[str], int]:
    """The per-test table and how many tests differ."""
    rows = compare_rows(first, second)
    width = max([len("test"), *(len(name) for name, _, _ in rows)])
    column = max(len(first.runtime), len(second.runtime), len("skipped"))
    lines = [f"{first.runtime}: {first.label}", f"{second.runtime}: {second.label}", "",
             f"{'test':<{width}}  {first.runtime:<{column}}  {second.runtime}"]
    differ = 0
    for name, a, b in rows:
        mark = "  differs" if a != b else ""
        differ += a != b
        lines.append(f"{name:<{width}}  {a:<{column}}  {b:<{column}}{mark}".rstrip())
    verdict = (f"{differ} of {len(rows)} tests differ between {first.runtime} and {second.runtime}" if differ
               else f"all {len(rows)} tests have the same outcome on {first.runtime} and {second.runtime}")
    return [*lines, "", verdict], differ


def run_side(project: Project, args: Sequence[str], runtime: str, report: Path, timeout: float,
             echo: Callable[[str], None]) -> Side:
    code = run_smoke_tests(project, [f"--junitxml={report}", *args], runtime=runtime, keep=False, timeout=timeout,
                           echo=echo)
    cases: list[Case] = read_cases(report) if report.exists() else []
    return Side(runtime, describe(project, runtime), code, {case.name: case.outcome for case in cases})


def compare_runtimes(project: Project, args: Sequence[str], *, runtime: str | None, other: str, timeout: float,
                     echo: Callable[[str], None], out: Callable[[str], None], junitxml: str | None = None) -> int:
    """Run the tests on `runtime` (as `hlocal test` picks it) and on `other`; print the table; the exit status."""
    first = choose_runtime_name(project, runtime)[0]
    if other == first:
        raise ConfigError(f"--compare {other} is the runtime the tests already run on",
                          f"compare with the other one, e.g. --runtime native --compare docker")
    with tempfile.TemporaryDirectory(prefix="hlocal-compare-") as tmp:
        sides = [run_side(project, args, name, Path(tmp) / f"{name}.xml", timeout, echo) for name in (first, other)]
        if junitxml:
            keep_reports(Path(tmp), Path(junitxml), first, other)
    lines, differ = table_lines(*sides)
    for line in lines:
        out(line)
    if differ:
        return 1
    return next((side.code for side in sides if side.code), 0)


def keep_reports(tmp: Path, junitxml: Path, first: str, other: str) -> None:
    """--junitxml PATH keeps the first runtime's report there and the other's beside it (PATH-RUNTIME.xml)."""
    junitxml.parent.mkdir(parents=True, exist_ok=True)
    for name, target in ((first, junitxml), (other, junitxml.with_name(f"{junitxml.stem}-{other}.xml"))):
        if (tmp / f"{name}.xml").exists():
            shutil.copyfile(tmp / f"{name}.xml", target)
