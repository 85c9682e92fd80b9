"""`hlocal push`: a plugin's module as the OCI image Higress pushes and its gateways (via Istio's fetcher) pull.

The layout is the one Higress itself pushes (alibaba/higress .github/workflows/build-and-push-wasm-plugin-image.yaml
and hgctl/pkg/plugin/build/{build.go,templates.go}, both `oras push`):
- doc layers when the plugin's folder has them: spec.yaml (`application/vnd.module.wasm.spec.v1+yaml`),
  README.md (`application/vnd.module.wasm.doc.v1+markdown`), README_<LANG>.md
  (`application/vnd.module.wasm.doc.v1.<lang>+markdown`), icon.png (`application/vnd.module.wasm.icon.v1+png`);
  the Higress console reads these.
- last, `plugin.tar.gz` (`application/vnd.oci.image.layer.v1.tar+gzip`): a tar.gz holding `plugin.wasm`.
- the config oras writes by default: `{}` as `application/vnd.unknown.config.v1+json`.
Istio's fetcher (istio/istio pkg/wasm/imagefetcher.go `extractOCIStandardImage`, the "compat" variant) takes the
LAST layer, requires that media type and reads the tar entry whose base name is `plugin.wasm`: so the module
layer must come last. (The other variant it reads, `application/vnd.module.wasm.content.layer.v1+wasm` with a
raw module and exactly two layers, is not what Higress pushes.)
A digest URL (`oci://REG/REPO@sha256:...`) pins the image: pkg/wasm/cache.go uses the digest as the checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests

from ..system import ownfiles as safefs
from ..errors import ConfigError, CorruptState, EnvironmentProblem, PluginError
from ..config.models import Plugin, Project
from ..wasm.module import inspect_file

MODULE_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
SPEC_MEDIA_TYPE = "application/vnd.module.wasm.spec.v1+yaml"
README_MEDIA_TYPE = "application/vnd.module.wasm.doc.v1+markdown"
README_LANG_MEDIA_TYPE = "application/vnd.module.wasm.doc.v1.{lang}+markdown"
ICON_MEDIA_TYPE = "application/vnd.module.wasm.icon.v1+png"
CONFIG_MEDIA_TYPE = "application/vnd.unknown.config.v1+json"  # oras's default, what `oras push` writes
MODULE_LAYER_FILE = "plugin.tar.gz"
MODULE_FILE = "plugin.wasm"  # the name Istio's fetcher looks for inside the layer
PUSHED_FILE = "pushed.json"
PUSHED_VERSION = 1
DEFAULT_TIMEOUT_S = 60.0  # per HTTP request; a registry that hangs must not hang hlocal
NOT_TLS = "the server does not speak TLS"

# The distribution spec's grammar for repository names and tags (opencontainers/distribution-spec spec.md).
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REGISTRY = re.compile(r"(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")
_README_LANG = re.compile(r"README_([A-Za-z]{2}(?:[-_][A-Za-z]{2})?)\.md")
_AUTH_HINT = ("log in with `docker login {registry}` (hlocal reads $DOCKER_CONFIG/config.json or "
              "~/.docker/config.json) or set ORAS_USER and ORAS_PASS")
# oras.provider.Registry.do_request is wrapped in a retry decorator that sleeps 3, 5, 11, 29 and 83 s
# between attempts, also on a refused login: hlocal makes one attempt per request and says why it failed.
_ONE_ATTEMPT = getattr(oras.provider.Registry.do_request, "__wrapped__", oras.provider.Registry.do_request)


class RegistryProblem(EnvironmentProblem):
    """The registry is unreachable, refused the credentials or the upload, or answered something unexpected."""


@dataclass(frozen=True)
class ImageRef:
    """Where to push: REGISTRY/REPOSITORY:TAG."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """`oci://REGISTRY/REPO:TAG` (the oci:// prefix is optional); ConfigError naming what is wrong."""
        example = "for example oci://127.0.0.1:5000/my-plugin:1.0.0"
        raw = text[len("oci://"):] if text.startswith("oci://") else text
        if "://" in raw:
            raise ConfigError(f"{text!r} is not an OCI reference", f"write oci://REGISTRY/REPO:TAG, {example}")
        if "@" in raw:
            raise ConfigError(f"{text!r} names a digest; a push needs a tag",
                              f"write oci://REGISTRY/REPO:TAG; hlocal prints the digest it pushed ({example})")
        registry, slash, rest = raw.partition("/")
        if not slash or not rest or not _REGISTRY.fullmatch(registry):
            raise ConfigError(f"{text!r} has no registry", f"write oci://REGISTRY/REPO:TAG, {example}")
        repository, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
        if not colon or not tag:
            raise ConfigError(f"{text!r} has no tag", f"add one, {example}")
        if not _REPOSITORY.fullmatch(repository):
            raise ConfigError(f"repository {repository!r} is not a valid OCI repository name",
                              "use lowercase letters, digits and . _ - separated by /")
        if not _TAG.fullmatch(tag):
            raise ConfigError(f"tag {tag!r} is not a valid OCI tag",
                              "use letters, digits, _ . and - (at most 128, not starting with . or -)")
        return cls(registry, repository, tag)

    @property
    def host(self) -> str:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        return host.strip("[]")

    @property
    def loopback(self) -> bool:
        """A registry on this machine: plain HTTP is fine there (as Docker treats localhost registries)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def pinned(self, digest: str) -> str:
        """The immutable URL of what was pushed, for a WasmPlugin's spec.url."""
        return f"oci://{self.registry}/{self.repository}@{digest}"

    def container(self) -> oras.container.Container:
        """oras's view of the reference; built field by field because its parser takes `localhost/x` for
        a namespace and `a.b/c` for a registry."""
        container = oras.container.Container(self.repository.rsplit("/", 1)[-1], registry=self.registry)
        container.registry = self.registry
        container.namespace = self.repository.rsplit("/", 1)[0] if "/" in self.repository else None
        container.repository = self.repository.rsplit("/", 1)[-1]
        container.tag = self.tag
        container.digest = None
        return container


@dataclass(frozen=True)
class LayerFile:
    """One file of the image: the layer's title annotation is the file's name."""

    path: Path
    media_type: str


@dataclass(frozen=True)
class PushedImage:
    """What `hlocal push` pushed for a plugin (kept in .hlocal/<project>/pushed.json)."""

    plugin: str
    reference: str  # REGISTRY/REPO:TAG as given
    digest: str  # of the manifest
    url: str  # oci://REGISTRY/REPO@DIGEST
    wasm_sha256: str  # of the module that was pushed
    layers: list[dict[str, Any]]  # title, mediaType, digest, size (module layer last)
    pushed_at: str


def module_layer(wasm: bytes, directory: Path) -> Path:
    """plugin.tar.gz holding plugin.wasm; the same module gives the same bytes (and so the same digest)."""
    buffer = io.BytesIO()
    info = tarfile.TarInfo(MODULE_FILE)
    info.size, info.mode, info.mtime = len(wasm), 0o644, 0
    info.uname = info.gname = ""
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            tar.addfile(info, io.BytesIO(wasm))
    path = directory / MODULE_LAYER_FILE
    path.write_bytes(buffer.getvalue())
    return path


def plugin_folder(plugin: Plugin) -> Path:
    """Where a plugin's spec.yaml and READMEs live: its build folder, else its module's folder."""
    return plugin.build.dir if plugin.build is not None else plugin.wasm.parent


def doc_layers(folder: Path) -> list[LayerFile]:
    """The spec, READMEs and icon found in `folder`, in the order Higress's hgctl pushes them."""
    found: list[LayerFile] = []
    for name, media_type in (("spec.yaml", SPEC_MEDIA_TYPE), ("README.md", README_MEDIA_TYPE)):
        if (folder / name).is_file():
            found.append(LayerFile(folder / name, media_type))
    for path in sorted(folder.glob("README_*.md")):
        match = _README_LANG.fullmatch(path.name)
        if match and path.is_file():
            lang = match.group(1).lower().replace("_", "-")
            found.append(LayerFile(path, README_LANG_MEDIA_TYPE.format(lang=lang)))
    if (folder / "icon.png").is_file():
        found.append(LayerFile(folder / "icon.png", ICON_MEDIA_TYPE))
    return found


def push_plugin(project: Project, plugin_name: str, target: str, *, insecure: bool = False, docs: bool = True,
                timeout: float = DEFAULT_TIMEOUT_S) -> PushedImage:
    """Push the plugin's module (and its docs) as an OCI image; record and return what was pushed."""
    plugin = project.plugin(plugin_name)
    ref = ImageRef.parse(target)
    index = next(i for i, p in enumerate(project.plugins) if p.name == plugin_name)
    info = inspect_file(plugin.wasm, f"plugins[{index}].wasm")  # PluginError when missing or not wasm
    if info.abi_version is None:
        raise PluginError(f"{plugin.wasm} exports no proxy_abi_version_* function: no gateway loads it as a plugin",
                          "build it as a proxy-wasm plugin (wasm-go: GOOS=wasip1 GOARCH=wasm go build "
                          "-buildmode=c-shared), then push again")
    wasm = plugin.wasm.read_bytes()
    with tempfile.TemporaryDirectory(prefix="hlocal-push-") as work:
        layers = (doc_layers(plugin_folder(plugin)) if docs else []) + [
            LayerFile(module_layer(wasm, Path(work)), MODULE_LAYER_MEDIA_TYPE)]
        client = RegistryClient(ref, plain_http=insecure, http_fallback=ref.loopback, timeout=timeout)
        digest, manifest = client.push(layers)
    pushed = PushedImage(
        plugin=plugin.name, reference=str(ref), digest=digest, url=ref.pinned(digest), wasm_sha256=info.sha256,
        layers=[{"title": layer.get("annotations", {}).get("org.opencontainers.image.title", ""),
                 "mediaType": layer["mediaType"], "digest": layer["digest"], "size": layer["size"]}
                for layer in manifest["layers"]],
        pushed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    record_push(project, pushed)
    return pushed


class RegistryClient:
    """One registry conversation through oras: a reachability check, then the push; every failure typed."""

    def __init__(self, ref: ImageRef, *, plain_http: bool, timeout: float, http_fallback: bool = False) -> None:
        self.ref = ref
        self.plain_http = plain_http
        # A registry on this machine may speak plain HTTP without a flag (as Docker treats localhost
        # registries); HTTPS is still tried first and its certificate still verified.
        self.http_fallback = http_fallback
        self.timeout = timeout

    def push(self, layers: list[LayerFile]) -> tuple[str, dict[str, Any]]:
        """Upload the layers and the manifest; return the manifest's digest and the manifest."""
        challenge = self._ping()
        # A registry answering `Basic realm=...` (htpasswd) takes the credentials as they are; the token
        # backend would ask the realm for a token and fail.
        backend = "basic" if challenge.lower().startswith("basic") else "token"
        registry = _Registry(self.ref.registry, plain_http=self.plain_http, auth_backend=backend,
                             timeout=self.timeout)
        _use_env_credentials(registry)
        config = _docker_config()
        try:
            response = registry.push(
                self.ref.container(), config_path=config, files=[f"{layer.path}:{layer.media_type}" for layer in layers],
                disable_path_validation=True, quiet=True)
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        except (ValueError, FileNotFoundError) as exc:
            raise self._refused(registry.last_response, str(exc)) from None
        if response.status_code not in (200, 201):
            raise self._refused(response, "manifest upload")
        body = response.request.body or b""
        body = body.encode() if isinstance(body, str) else body
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise RegistryProblem(f"registry {self.ref.registry} stored the manifest as {announced}, not {digest}",
                                  "the registry rewrote the manifest; push with another registry or report it")
        return digest, json.loads(body)

    def _ping(self) -> str:
        """GET /v2/ (the API version check); return the auth challenge, '' when none is asked for."""
        url = f"{'http' if self.plain_http else 'https'}://{self.ref.registry}/v2/"
        try:
            response = requests.get(url, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            reason = _reason(exc)
            if reason == NOT_TLS and self.http_fallback:
                self.plain_http = True
                return self._ping()
            hint = ("trust its CA for this command: REQUESTS_CA_BUNDLE=/path/to/ca.pem hlocal push ..."
                    if reason == "certificate verify failed"
                    else "if it serves plain HTTP and you trust the network, pass --insecure")
            raise RegistryProblem(f"registry {self.ref.registry} did not complete a TLS handshake ({reason})",
                                  hint) from None
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None
        if response.status_code == 401:
            return response.headers.get("Www-Authenticate", "")
        if response.status_code != 200:
            raise RegistryProblem(f"{url} answered HTTP {response.status_code}, not an OCI registry's 200 or 401",
                                  "check the registry address (REGISTRY in oci://REGISTRY/REPO:TAG)")
        return ""

    def _unreachable(self, exc: Exception) -> RegistryProblem:
        hint = "start the registry or check the address"
        if not (self.plain_http or self.http_fallback):
            hint += "; for a plain-HTTP registry you trust, pass --insecure"
        return RegistryProblem(f"registry {self.ref.registry} is unreachable: {_reason(exc)}", hint)

    def _refused(self, response: requests.Response | None, what: str) -> RegistryProblem:
        if response is None or response.status_code < 400:
            return RegistryProblem(f"push to {self.ref} failed: {what}", "run again with --debug for details")
        request = response.request
        where = f"{request.method} {request.path_url}" if request is not None else what
        if response.status_code in (401, 403):
            return RegistryProblem(f"registry {self.ref.registry} refused {where} (HTTP {response.status_code})",
                                   _AUTH_HINT.format(registry=self.ref.registry))
        return RegistryProblem(
            f"registry {self.ref.registry} answered HTTP {response.status_code} to {where}{_oci_errors(response)}",
            "check the repository name and that the registry accepts OCI image manifests")


class _Registry(oras.provider.Registry):
    """oras's registry client with one attempt per request, a timeout on each, and the last response kept."""

    def __init__(self, hostname: str, *, plain_http: bool, auth_backend: str, timeout: float) -> None:
        super().__init__(hostname=hostname, insecure=plain_http, auth_backend=auth_backend)
        self.last_response: requests.Response | None = None
        session = _TimeoutSession(timeout)
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # as oras sets its own session
        self.session = session
        self.auth.session = session  # the auth backend asks for tokens through the same session
        if auth_backend == "basic" and not hasattr(self.auth, "_basic_auth"):
            # oras's basic backend has no credentials attribute until some are found; without one it
            # fails with AttributeError instead of letting the registry answer 401.
            self.auth._basic_auth = None

    def do_request(self, url: str, method: str = "GET", data: Any = None, headers: dict | None = None,
                   json: dict | None = None, stream: bool = False) -> requests.Response:
        response = _ONE_ATTEMPT(self, url, method, data, headers, json, stream)
        self.last_response = response
        return response


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _use_env_credentials(registry: _Registry) -> None:
    """ORAS_USER / ORAS_PASS (oras's own variables) win over the docker config, for every auth backend."""
    user, password = os.environ.get("ORAS_USER"), os.environ.get("ORAS_PASS")
    if user and password:
        registry.auth.set_basic_auth(user, password)
        # oras reads the docker config only while its auth config is empty; a non-empty one without
        # entries keeps a stored login from replacing the credentials given here.
        registry.auth._auth_config = {"auths": {}, "credHelpers": {}, "credsStore": None}


def _docker_config() -> str | None:
    """$DOCKER_CONFIG/config.json when set (oras itself only reads ~/.docker/config.json)."""
    folder = os.environ.get("DOCKER_CONFIG")
    if folder and (Path(folder) / "config.json").is_file():
        return str(Path(folder) / "config.json")
    return None


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host",
                   "Temporary failure in name resolution", "WRONG_VERSION_NUMBER", "certificate verify failed",
                   "Connection reset"):
        if marker.lower() in text.lower():
            return marker.lower() if marker != "WRONG_VERSION_NUMBER" else NOT_TLS
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _oci_errors(response: requests.Response) -> str:
    """`: CODE message` from an OCI error body, if there is one."""
    try:
        errors = response.json().get("errors", [])
    except (ValueError, AttributeError):
        return ""
    parts = [f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)]
    return f": {'; '.join(parts)}" if parts else ""


# ---- .hlocal/<project>/pushed.json ---------------------------------------------------------------


def record_push(project: Project, pushed: PushedImage) -> Path:
    """Remember the push (one entry per plugin, the latest wins) for `hlocal export higress`."""
    path = project.state_dir / PUSHED_FILE
    entries = {name: asdict(image) for name, image in load_pushed(project).items()}
    entries[pushed.plugin] = asdict(pushed)
    doc = {"version": PUSHED_VERSION, "plugins": entries}
    safefs.write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def load_pushed(project: Project) -> dict[str, PushedImage]:
    """What was pushed per plugin; empty when nothing was. CorruptState for a file hlocal did not write."""
    path = project.state_dir / PUSHED_FILE
    if not safefs.check_dir(project.state_dir):
        return {}
    raw = safefs.read_private(path)
    if raw is None:
        return {}
    hint = f"delete {path} and push again"
    try:
        doc = json.loads(raw)
        if doc.get("version") != PUSHED_VERSION:
            raise CorruptState(f"{path} has version {doc.get('version')!r}, not {PUSHED_VERSION}", hint)
        return {name: PushedImage(**entry) for name, entry in doc["plugins"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptState(f"{path} is not a record of hlocal push ({type(exc).__name__})", hint) from None
