"""`hlocal init`: a commented hlocal.yaml and a smoke test for the plugin in a directory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config.project import CONFIG_NAMES, sanitise_name
from ..errors import ConfigError, HlocalError
from ..config.project import parse_project, Plugin
from ..wasm.plugins import check_plugin

SMOKE_TEST = Path("tests") / "test_smoke.py"

CONFIG_TEMPLATE = """\
# hlocal.yaml: run the {plugin} plugin behind a real gateway, with a mock backend that echoes requests.
#   hlocal up / hlocal probe / hlocal down     start it, run the probes below, stop it
#   hlocal test                                {build_step}start it, run tests/ with pytest, stop it
# Every key is described in the "hlocal.yaml reference" of hlocal's README.
name: {name}
runtime: {runtime}{runtime_comment}
gateway:
  port: 0                       # 0: a free port (`hlocal up` prints it); e.g. 10000 for a fixed one
plugins:
  - name: {plugin}
    wasm: {wasm}{wasm_comment}
{build}    config: {{}}                  # TODO {config_todo}
    # rules:                    # per-route configs, as Higress matchRules
    #   - match_route_prefix: [/admin]
    #     config: {{}}
probes:                         # `hlocal probe` sends these and checks the answers
  - name: reaches the backend
    request: {{path: /hello}}
    expect:
      status: 200
      upstream: {{path: /hello}}  # the request as the backend received it
"""

SMOKE_TEMPLATE = '''\
"""Smoke tests for the {plugin} plugin behind a real gateway.

Run them with `hlocal test` (start the stack, run pytest, stop it) or with plain `pytest`.
Fixtures from hlocal's pytest plugin: `gateway` (a requests.Session on the gateway),
`upstream` (what the mock backend received), `plugin_logs` (what the plugin logged during
the test) and `hlocal_stack` (the running stack).
"""


def test_request_reaches_the_backend(gateway, upstream):
    response = gateway.get("/hello", headers={{"x-smoke": "1"}})
    assert response.status_code == 200
    received = upstream.last()
    assert received.method == "GET"
    assert received.path == "/hello"


# More to adapt to what {plugin} does:
#
# import pytest
#
# def test_adds_a_header(gateway, upstream):
#     gateway.get("/hello")
#     assert upstream.last().headers["x-my-header"] == "on"
#
# @pytest.mark.hlocal_config(plugin="{plugin}", config={{"enabled": False}})  # for this test only
# def test_disabled(gateway, upstream):
#     gateway.get("/hello")
#     assert "x-my-header" not in upstream.last().headers
#
# def test_logs_the_path(gateway, plugin_logs):
#     gateway.get("/hello")
#     plugin_logs.assert_logged(r"/hello")
'''


@dataclass
class InitResult:
    """What `hlocal init` wrote and what it found out."""

    written: list[Path]
    notes: list[str] = field(default_factory=list)


def plugin_name(directory: Path) -> str:
    """The plugin's name: the last element of go.mod's module path, else the directory name."""
    try:
        text = (directory / "go.mod").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    match = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    return sanitise_name(match.group(1).rstrip("/").rsplit("/", 1)[-1] if match else directory.name)


def stock_envoy_runs(wasm: Path, name: str) -> tuple[bool, str]:
    """Whether stock Envoy (the native runtime) can run the module, and why not."""
    try:
        check = check_plugin(Plugin(name=name, wasm=wasm), "envoy")
    except HlocalError as exc:
        return True, f"could not inspect {wasm.name} ({exc.message}); `hlocal check` says more"
    if check.compat.runnable:
        return True, ""
    return False, "; ".join(check.compat.problems)


def config_keys(directory: Path) -> list[str]:
    """The keys the plugin's Go sources read from their JSON config (`json.Get("key")`, gjson as the
    wasm-go SDK hands it over): a hint for the TODO in hlocal.yaml, not a schema."""
    keys: list[str] = []
    for source in sorted(directory.glob("*.go")):
        try:
            text = source.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for key in CONFIG_KEY.findall(text):
            if key not in keys:
                keys.append(key)
    return keys[:12]


CONFIG_KEY = re.compile(r"\b\w*[jJ](?:son|SON)\w*\.Get\(\s*\"([A-Za-z0-9_.\-]+)\"\s*\)")


def config_todo(keys: list[str]) -> str:
    """What the placeholder `config: {}` needs: the keys the sources read, when found."""
    if keys:
        return f"fill in what the plugin reads: {', '.join(keys)} (as YAML; the gateway gets JSON)"
    return "the plugin's configuration, as YAML (the gateway gets it as JSON)"


def render_config(*, name: str, plugin: str, wasm: str, build: str | None, runtime: str, why_docker: str,
                  keys: list[str] | None = None) -> str:
    """The commented hlocal.yaml text; `build` is None (no build section), "" (default) or a build.dir."""
    if runtime == "docker":
        runtime_comment = f"               # the Higress gateway image (what auto picks): stock Envoy cannot run it ({why_docker})"
    else:
        runtime_comment = "               # the embedded Envoy (what auto picks for this plugin); docker: the Higress image"
    build_line = ""
    if build is not None:
        build_line = "    build: {}                   # `hlocal build`: go build for wasip1 (up/test build when stale)\n"
        if build:
            build_line = f"    build: {{dir: {build}}}            # `hlocal build`: go build for wasip1 in this directory\n"
    return CONFIG_TEMPLATE.format(
        name=name, plugin=plugin, wasm=wasm, build=build_line, runtime=runtime, runtime_comment=runtime_comment,
        wasm_comment="" if build is not None else "           # relative to this file",
        build_step="build, " if build is not None else "", config_todo=config_todo(keys or []),
    )


def render_smoke_test(plugin: str) -> str:
    return SMOKE_TEMPLATE.format(plugin=plugin)


def init_project(directory: Path, *, wasm: str | None = None, force: bool = False) -> InitResult:
    """Write hlocal.yaml and tests/test_smoke.py for the plugin in `directory` (detecting main.wasm and go.mod)."""
    import yaml

    directory = directory.resolve()
    module = (directory / wasm) if wasm else directory / "main.wasm"
    has_go = (directory / "go.mod").is_file()
    if not module.is_file() and not has_go:
        raise ConfigError(f"no {module.name} and no go.mod in {directory}",
                          "run `hlocal init` in the plugin's directory, or pass --wasm PATH")
    targets = [directory / CONFIG_NAMES[0], directory / SMOKE_TEST]
    existing = [p for p in targets + [directory / n for n in CONFIG_NAMES[1:]] if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} already exists", "pass --force to overwrite it")
    name = plugin_name(directory)
    notes: list[str] = []
    runnable, why = stock_envoy_runs(module, name) if module.is_file() else (True, "")
    if why and runnable:
        notes.append(why)
    build = None
    if has_go:
        build = "" if module.parent == directory else "."
        if not module.is_file():
            notes.append(f"{module.name} is not built yet: `hlocal build` (or `hlocal test`) builds it")
    relative = os.path.relpath(module, directory).replace(os.sep, "/")
    keys = config_keys(directory)
    notes.append("hlocal.yaml's `config: {}` is a placeholder (TODO): a plugin that needs keys"
                 + (f" (its Go sources read {', '.join(keys)})" if keys else "")
                 + " rejects it at `hlocal up` (exit 4); fill it in, then the probe and tests/ run as written")
    text = render_config(name=sanitise_name(directory.name), plugin=name, wasm=f"./{relative}", build=build,
                         runtime="native" if runnable else "docker", why_docker=why, keys=keys)
    parse_project(yaml.safe_load(text), targets[0])  # the template must always be valid
    targets[1].parent.mkdir(parents=True, exist_ok=True)
    targets[0].write_text(text, encoding="utf-8")
    targets[1].write_text(render_smoke_test(name), encoding="utf-8")
    written = list(targets)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        # hlocal's state (logs with request headers, rendered files, module copies) never belongs in git.
        ignore.write_text(GITIGNORE + (f"{relative}\n" if has_go else ""), encoding="utf-8")
        written.append(ignore)
    elif ".hlocal" not in ignore.read_text(encoding="utf-8", errors="replace"):
        notes.append(f"add `.hlocal/` to {ignore.name}: it holds logs with request headers and rendered files")
    return InitResult(written=written, notes=notes)


GITIGNORE = "# hlocal's stack state: logs (with request headers), rendered files, module copies\n.hlocal/\n"
