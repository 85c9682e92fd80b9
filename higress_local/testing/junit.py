"""Reading the JUnit XML that pytest writes (`hlocal test --junitxml`): one outcome per test."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

# pytest's junitxml: a <testcase> holds <failure>, <error> or <skipped> when it did not pass; an xfail is
# written as <skipped type="pytest.xfail">.
OUTCOME_OF_CHILD = {"failure": "failed", "error": "error", "skipped": "skipped"}


@dataclass(frozen=True)
class Case:
    """One test as the JUnit file reports it."""

    name: str  # classname::name, as pytest's node ids read (tests.test_smoke::test_x)
    outcome: str  # passed, failed, error or skipped
    seconds: float
    message: str = ""


def read_cases(path: Path) -> list[Case]:
    """Every <testcase> of a JUnit XML file, in file order."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"cannot read JUnit XML {path}: {exc}",
                         "pass the file `hlocal test --junitxml` (or pytest --junitxml) wrote") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise ConfigError(f"{path} is not JUnit XML (its root is <{root.tag}>)",
                         "pass the file `hlocal test --junitxml` (or pytest --junitxml) wrote")
    return [_case(element) for element in root.iter("testcase")]


def _case(element: ET.Element) -> Case:
    outcome, message = "passed", ""
    for child in element:
        if child.tag in OUTCOME_OF_CHILD:
            outcome = OUTCOME_OF_CHILD[child.tag]
            message = (child.get("message") or "").splitlines()[0] if child.get("message") else ""
            break
    classname, name = element.get("classname", ""), element.get("name", "")
    return Case(name=f"{classname}::{name}" if classname else name, outcome=outcome,
                seconds=float(element.get("time") or 0.0), message=message)
