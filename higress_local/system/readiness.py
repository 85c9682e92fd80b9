"""The readiness rule shared by both runtimes, checked through the admin API and the ports."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .wait import Deadline, NotYet
from ..errors import PluginError


@dataclass
class ReadyTarget:
    """Where to look: admin API, gateway listener, backend control port, plugin filters."""

    admin_url: str
    gateway_host: str
    gateway_port: int
    control_url: str
    versions: dict[str, str]  # ECDS filter name -> the version that must be live
    failed: Callable[[], None] = lambda: None  # raises the classified error when something broke
    extra_checks: list[Callable[[], None]] = field(default_factory=list)  # services; raise NotYet


@dataclass
class Readiness:
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class AdminResponse:
    status_code: int
    text: str

    def json(self) -> Any:
        import json

        return json.loads(self.text)


def admin_get(url: str, timeout: float = 2.0, params: dict | None = None) -> AdminResponse:
    """GET on loopback over a plain socket: Envoy's admin API and the mocks' health only.

    Not urllib: importing urllib.request (and http.client, email) costs a one-shot `hlocal reload`
    more than the reload itself. No proxies from the environment apply, which is what loopback needs.
    """
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"admin_get speaks plain http to a host: {url}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if params:
        target += ("&" if parts.query else "?") + urlencode(params)
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
               f"Accept-Encoding: identity\r\n\r\n").encode("latin-1")
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise ConnectionError(f"{url}: {exc}") from exc
    return _parse_response(b"".join(chunks), url)


def _parse_response(data: bytes, url: str) -> AdminResponse:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"{url}: not an HTTP response ({lines[0][:60]!r})") from None
    if not sep:
        raise ConnectionError(f"{url}: the response ended in its headers")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif "content-length" in fields:
        body = body[:int(fields["content-length"])]
    return AdminResponse(status, body.decode("utf-8", errors="replace"))


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


ECDS_STAT_PREFIX = "extension_config_discovery.http_filter."
RDS_STAT_PREFIX = "http.gateway.rds.hlocal."
CDS_STAT_PREFIX = "cluster_manager.cds."


def admin_stats(admin_url: str, pattern: str) -> dict[str, str]:
    """Stats whose names match a regex, as text (text readouts lose their quotes)."""
    response = admin_get(f"{admin_url}/stats", params={"filter": pattern})
    if response.status_code != 200:
        raise NotYet(f"admin /stats answered {response.status_code}")
    out = {}
    for line in response.text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            out[name] = value.strip().strip('"')
    return out


def ecds_stats(admin_url: str) -> dict[str, dict[str, str]]:
    """Per ECDS filter: version_text (the version Envoy serves), update_success, update_rejected.

    The stats, not /config_dump, say what is live: config_dump shows a rejected resource as if current.
    """
    out: dict[str, dict[str, str]] = {}
    for name, value in admin_stats(admin_url, r"^extension_config_discovery\.http_filter\.").items():
        filter_name, _, stat = name[len(ECDS_STAT_PREFIX):].rpartition(".")
        out.setdefault(filter_name, {})[stat] = value
    return out


def xds_stats(admin_url: str, prefix: str) -> dict[str, str]:
    """version_text / update_rejected / update_success of the routes (RDS) or clusters (CDS) file."""
    stats = admin_stats(admin_url, "^" + prefix.replace(".", "\\.") + "(version_text|update_rejected|update_success)$")
    return {name[len(prefix):]: value for name, value in stats.items()}


def check_ready(target: ReadyTarget) -> None:
    """One pass of the rule; raises NotYet naming the first thing not ready."""
    target.failed()
    try:
        live = admin_get(f"{target.admin_url}/ready")
    except OSError as exc:
        # The gateway process is alive (target.failed() said so). Envoy's main thread serves the admin
        # API and is the one compiling Wasm modules, so a silent admin port means "still starting".
        plugins = [name.rsplit(".", 1)[-1] for name in target.versions]
        busy = f" (compiling plugin {', '.join(plugins)})" if plugins else ""
        raise NotYet(f"Envoy is starting{busy}: its admin API {target.admin_url} does not answer yet") from exc
    if live.status_code != 200 or live.text.strip() != "LIVE":
        raise NotYet(f"admin /ready says {live.text.strip() or live.status_code}")
    stats = ecds_stats(target.admin_url)
    pending = [name for name, version in target.versions.items()
               if stats.get(name, {}).get("version_text") != version]
    if pending:
        target.failed()  # a rejected first load leaves the version empty: say why rather than wait
        rejected = [n for n in pending if stats.get(n, {}).get("update_rejected", "0") != "0"]
        if rejected:
            raise PluginError(f"Envoy rejected the plugin filter {rejected[0]}", "see `hlocal logs gateway`")
        raise NotYet(f"plugin filters not live yet: {', '.join(pending)}")
    try:
        with socket.create_connection((target.gateway_host, target.gateway_port), timeout=1.0):
            pass
    except OSError as exc:
        raise NotYet(f"listener {target.gateway_host}:{target.gateway_port} not accepting") from exc
    try:
        health = admin_get(f"{target.control_url}/__hlocal/health")
    except OSError as exc:
        raise NotYet("backend not answering") from exc
    if health.status_code != 200:
        raise NotYet(f"backend health answered {health.status_code}")
    for extra in target.extra_checks:
        extra()
    target.failed()


def wait_until_ready(target: ReadyTarget, timeout: float, *, log_hint: str = "") -> Readiness:
    started = time.monotonic()
    Deadline(timeout=timeout, interval=0.05).until(
        lambda: check_ready(target),
        what="the gateway to become ready (admin /ready LIVE, plugins loaded, listener, backend, services)",
        hint=f"look at the gateway log{': ' + log_hint if log_hint else ''}, or raise --timeout",
    )
    return Readiness(seconds=time.monotonic() - started)
