"""ARCHITECTURE.md's folder map names every package and top-level module of the tree, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import higress_local

PACKAGE_DIR = Path(higress_local.__file__).resolve().parent
ARCHITECTURE = PACKAGE_DIR.parent / "ARCHITECTURE.md"


def listed(text: str) -> set[str]:
    """The entries of the "Folder map" section: each bullet's first backticked name."""
    section = text.split("## Folder map", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`", section, flags=re.MULTILINE))


def in_tree(root: Path) -> set[str]:
    """Top-level modules, top-level folders, and every package below them (as `a/b/`)."""
    names = {p.name for p in root.glob("*.py")}
    names |= {f"{p.name}/" for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"}
    names |= {f"{p.parent.relative_to(root).as_posix()}/" for p in root.glob("*/**/__init__.py")}
    return names


def test_the_folder_map_matches_the_tree():
    documented, actual = listed(ARCHITECTURE.read_text(encoding="utf-8")), in_tree(PACKAGE_DIR)
    assert not documented - actual, f"ARCHITECTURE.md lists what is not there: {sorted(documented - actual)}"
    assert not actual - documented, f"ARCHITECTURE.md does not list: {sorted(actual - documented)}"


def test_the_map_reader_sees_a_missing_and_an_extra_entry(tmp_path: Path):
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "__init__.py").write_text("")
    (tmp_path / "cli" / "sub").mkdir()
    (tmp_path / "cli" / "sub" / "__init__.py").write_text("")
    (tmp_path / "entry.py").write_text("")
    assert in_tree(tmp_path) == {"cli/", "cli/sub/", "entry.py"}
    text = "## Folder map\n\n- `cli/`: commands.\n- `gone/`: was here.\n\n## Invariants\n- `not/`: elsewhere.\n"
    assert listed(text) == {"cli/", "gone/"}


def test_the_package_has_at_most_twelve_top_level_modules():
    assert len(list(PACKAGE_DIR.glob("*.py"))) <= 12
