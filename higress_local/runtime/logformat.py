"""gateway.access_log_format, checked by Envoy itself before a stack starts.

Envoy's list of access-log commands grows with every release and some need a formatter extension,
so hlocal does not keep its own list: it renders the access log exactly as the stack will (same
format, same formatters) into a bootstrap of one listener and runs `envoy --mode validate` on it
(about 0.07 s). Envoy's two parse errors are turned into one line naming the key and the command.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml

from ..config.project import Project
from .envoys import find_envoy
from ..errors import ConfigError
from ..system.proc import run
from ..render.envoy import HCM_TYPE, ROUTER_TYPE, Layout, render_access_log

KEY = "gateway.access_log_format"
SYNTAX_HINT = "a command is %NAME%, %NAME(ARG)% or %NAME(ARG):LENGTH%; write a literal % as %%"
COMMANDS_DOC = "https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage"
# The two messages Envoy (1.36 to 1.40, seen here) refuses a text format with: an unknown command,
# and a % that opens no well-formed command.
_UNKNOWN = re.compile(r"Not supported field in StreamInfo: (\S+)")
_AT = re.compile(r"Couldn't find valid command at position (\d+)")
_ENVOY_ERROR = re.compile(r"error initializing configuration '[^']*': (.*)")
VALIDATE_TIMEOUT = 30.0


def validation_bootstrap(project: Project) -> dict:
    """One listener whose only job is to carry the stack's access log (nothing is bound in validate mode)."""
    layout = Layout(flavor="envoy", listen_address="127.0.0.1", listen_port=0, admin_address="127.0.0.1",
                    admin_port=0, backend_address="127.0.0.1", backend_port=1, ecds_dir="", xds_dir="",
                    access_log="/dev/null")
    manager = {
        "@type": HCM_TYPE, "stat_prefix": "validate", "route_config": {},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}],
        "access_log": render_access_log(project, layout),
    }
    return {"static_resources": {"listeners": [{
        "name": "validate",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": manager}]}],
    }]}}


def check_access_log_format(project: Project, envoy: str | None = None) -> None:
    """Raise ConfigError when Envoy refuses gateway.access_log_format (unset: Higress's, known good)."""
    log_format = project.gateway.access_log_format
    if log_format is None:
        return
    if envoy is None:
        envoy = find_envoy(None)
    with tempfile.TemporaryDirectory(prefix="hlocal-logformat-") as tmp:
        bootstrap = Path(tmp) / "validate.yaml"
        bootstrap.write_text(yaml.safe_dump(validation_bootstrap(project), sort_keys=False), encoding="utf-8")
        done = run([envoy, "--mode", "validate", "--disable-hot-restart", "-l", "error", "-c", str(bootstrap)],
                   check=False, timeout=VALIDATE_TIMEOUT)
    if done.returncode == 0:
        return
    raise format_error(project, log_format, done.stdout + done.stderr)


def format_error(project: Project, log_format: str, output: str) -> ConfigError:
    """Envoy's refusal as one line: which key, which command, why."""
    where = f"{project.file.name}: {KEY}"
    unknown = _UNKNOWN.search(output)
    if unknown:
        return ConfigError(f"{where}: %{unknown.group(1)}% is not an access-log command this Envoy knows",
                           f"check its spelling against {COMMANDS_DOC}")
    at = _AT.search(output)
    if at:
        position = int(at.group(1))
        return ConfigError(f"{where}: no complete command at character {position + 1}: "
                           f"{_excerpt(log_format, position)!r}", SYNTAX_HINT)
    envoy = _ENVOY_ERROR.search(output)
    reason = envoy.group(1).strip() if envoy else (output.strip().splitlines() or ["no output"])[-1]
    return ConfigError(f"{where}: Envoy refuses it: {reason}", SYNTAX_HINT)


def _excerpt(text: str, position: int, width: int = 40) -> str:
    piece = text[position:position + width]
    return piece + "…" if len(text) > position + width else piece
