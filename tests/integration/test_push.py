"""`hlocal push` to a real registry (Debian's `docker-registry`, the Distribution registry), checked over
the registry's HTTP API: the manifest, the layer order and media types, the bytes of the module; then
`hlocal export higress` pointing the WasmPlugin at the pushed digest."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from support import run_hlocal, wait_for

REQUIRE = os.environ.get("HLOCAL_REQUIRE_DOCKER") == "1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# A bcrypt hash of "s3cret" (the registry's htpasswd backend reads bcrypt only).
HTPASSWD = "hlocal:$2b$04$76S5JV8mxWYdnxBvuJyi2u5S5t1ZKEdIzoYHUknftoVdQOWlMIwZW\n"


@dataclass
class Registry:
    address: str  # 127.0.0.1:PORT

    def get(self, path: str, accept: str = "*/*", auth: tuple[str, str] | None = None) -> tuple[bytes, dict]:
        request = urllib.request.Request(f"http://{self.address}{path}", headers={"Accept": accept})
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read(), dict(response.headers)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(address: str, tls: bool = False) -> bool:
    context = None
    if tls:  # only "is it up?": the certificate is checked by the tests themselves
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{'https' if tls else 'http'}://{address}/v2/", timeout=2, context=context):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 401  # up, asking for credentials
    except OSError:
        return False


def _serve(root: Path, auth: bool = False, tls: tuple[Path, Path] | None = None) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        why = "docker-registry is not installed (apt-get install docker-registry)"
        if REQUIRE:
            pytest.fail(f"HLOCAL_REQUIRE_DOCKER=1 but {why}", pytrace=False)
        pytest.skip(why)
    address = f"127.0.0.1:{_free_port()}"
    config = {"version": 0.1, "log": {"level": "warn"},
              "storage": {"filesystem": {"rootdirectory": str(root / "store")}}, "http": {"addr": address}}
    if tls:
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    if auth:
        (root / "htpasswd").write_text(HTPASSWD)
        config["auth"] = {"htpasswd": {"realm": "hlocal-test", "path": str(root / "htpasswd")}}
    (root / "config.yml").write_text(yaml.safe_dump(config))
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(address, tls=bool(tls)), 30,
                 f"the registry on {address}")
        assert proc.poll() is None, (root / "registry.log").read_text()
        yield Registry(address)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _serve(tmp_path_factory.mktemp("registry"), auth=False)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _serve(tmp_path_factory.mktemp("registry-auth"), auth=True)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    """A registry serving HTTPS on 127.0.0.1 with a self-signed certificate (hlocal's own generator)."""
    from higress_local.config.project import parse_project
    from higress_local.runtime.tls import ensure_certificate

    root = tmp_path_factory.mktemp("registry-tls")
    cert = ensure_certificate(parse_project({"name": "tls"}, root / "hlocal.yaml"), root / "tls")
    for registry in _serve(root, tls=(cert.cert, cert.key)):
        yield registry, cert.cert


@pytest.fixture
def project(tmp_path: Path, transformer_wasm: Path) -> Path:
    """A project with the official transformer module, a README and a spec.yaml beside it."""
    shutil.copyfile(transformer_wasm, tmp_path / "transformer.wasm")
    (tmp_path / "README.md").write_text("# transformer\n")
    (tmp_path / "spec.yaml").write_text("apiVersion: 1.0.0\ninfo: {name: transformer}\n")
    (tmp_path / "hlocal.yaml").write_text(
        "name: shipped\nplugins:\n  - name: transformer\n    wasm: transformer.wasm\n    config: {reqRules: []}\n")
    return tmp_path


def fetch_like_istio(registry: Registry, repository: str, reference: str) -> bytes:
    """The module as Higress's gateway gets it (istio/istio pkg/wasm/imagefetcher.go, "compat" variant of an
    OCI manifest): the LAST layer must be a tar+gzip layer holding an entry whose base name is plugin.wasm,
    and the bytes must start with the wasm magic (pkg/wasm/cache.go isValidWasmBinary)."""
    accept = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads(registry.get(f"/v2/{repository}/manifests/{reference}", accept=accept)[0])
    assert manifest["mediaType"] == OCI_MANIFEST  # not Docker schema 2, which Istio reads another way
    layer = manifest["layers"][-1]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    blob, _ = registry.get(f"/v2/{repository}/blobs/{layer['digest']}")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar:
            if os.path.basename(member.name) == "plugin.wasm":
                data = tar.extractfile(member).read()
                assert data[:4] == b"\0asm"
                return data
    raise AssertionError(f"no plugin.wasm in the last layer of {repository}:{reference}")


def _digest_of(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("digest: ")]
    return line.split(": ", 1)[1]


def test_push_gives_the_image_higress_loads_verified_over_the_registry_api(registry: Registry, project: Path):
    wasm = (project / "transformer.wasm").read_bytes()
    done = run_hlocal(project, "push", "transformer", f"oci://{registry.address}/plugins/transformer:1.0.0")
    assert done.returncode == 0, done
    digest = _digest_of(done.stdout)
    assert f"url:    oci://{registry.address}/plugins/transformer@{digest}" in done.stdout

    manifest_bytes, headers = registry.get("/v2/plugins/transformer/manifests/1.0.0", accept=OCI_MANIFEST)
    assert headers["Docker-Content-Digest"] == digest == "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.unknown.config.v1+json"
    assert registry.get(f"/v2/plugins/transformer/blobs/{manifest['config']['digest']}")[0] == b"{}"
    # Higress's layout: docs first, the module layer last (Istio's fetcher reads the last layer).
    assert [(layer["annotations"]["org.opencontainers.image.title"], layer["mediaType"])
            for layer in manifest["layers"]] == [
        ("spec.yaml", "application/vnd.module.wasm.spec.v1+yaml"),
        ("README.md", "application/vnd.module.wasm.doc.v1+markdown"),
        ("plugin.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ]
    for layer in manifest["layers"]:
        blob, _ = registry.get(f"/v2/plugins/transformer/blobs/{layer['digest']}")
        assert layer["digest"] == "sha256:" + hashlib.sha256(blob).hexdigest() and layer["size"] == len(blob)
    module_blob, _ = registry.get(f"/v2/plugins/transformer/blobs/{manifest['layers'][-1]['digest']}")
    with tarfile.open(fileobj=io.BytesIO(module_blob), mode="r:gz") as tar:
        assert tar.getnames() == ["plugin.wasm"]
    assert fetch_like_istio(registry, "plugins/transformer", "1.0.0") == wasm
    assert fetch_like_istio(registry, "plugins/transformer", digest) == wasm
    readme, _ = registry.get(f"/v2/plugins/transformer/blobs/{manifest['layers'][1]['digest']}")
    assert readme == b"# transformer\n"

    record = json.loads((project / ".hlocal" / "shipped" / "pushed.json").read_text())["plugins"]["transformer"]
    assert record["digest"] == digest and record["wasm_sha256"] == hashlib.sha256(wasm).hexdigest()

    # The same module and docs under another tag: the same manifest, so the same digest.
    again = run_hlocal(project, "push", "transformer", f"oci://{registry.address}/plugins/transformer:latest", "-q")
    assert again.returncode == 0, again
    assert again.stdout.strip() == digest


def test_export_higress_points_the_wasmplugin_at_the_pushed_digest(registry: Registry, project: Path):
    done = run_hlocal(project, "push", "transformer", f"oci://{registry.address}/team/transformer:2", "--no-docs")
    assert done.returncode == 0, done
    digest = _digest_of(done.stdout)

    exported = run_hlocal(project, "export", "higress")
    assert exported.returncode == 0, exported
    [plugin] = [doc for doc in yaml.safe_load_all(exported.stdout) if doc and doc["kind"] == "WasmPlugin"]
    url = plugin["spec"]["url"]
    assert url == f"oci://{registry.address}/team/transformer@{digest}"
    assert "is on this machine" in exported.stderr
    # The URL names something the registry serves: the manifest by digest, with only the module layer.
    repository, _, pinned = url[len(f"oci://{registry.address}/"):].partition("@")
    manifest = json.loads(registry.get(f"/v2/{repository}/manifests/{pinned}", accept=OCI_MANIFEST)[0])
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"]
    assert fetch_like_istio(registry, repository, pinned) == (project / "transformer.wasm").read_bytes()

    (project / "transformer.wasm").write_bytes((project / "transformer.wasm").read_bytes() + b"\0")
    stale = run_hlocal(project, "export", "higress")
    assert stale.returncode == 0 and "transformer.wasm changed since it was pushed" in stale.stderr


def test_credentials_come_from_the_docker_config_or_oras_variables(auth_registry: Registry, project: Path,
                                                                   tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")  # no stored login from the machine's own ~/.docker
    target = f"oci://{auth_registry.address}/private/transformer:1"

    refused = run_hlocal(project, "push", "transformer", target, env={"HOME": str(home)})
    assert refused.returncode == 3, refused
    assert f"error: registry {auth_registry.address} refused" in refused.stderr and "(HTTP 401)" in refused.stderr
    assert f"hint: log in with `docker login {auth_registry.address}`" in refused.stderr

    wrong = run_hlocal(project, "push", "transformer", target,
                       env={"HOME": str(home), "ORAS_USER": "hlocal", "ORAS_PASS": "wrong"})
    assert wrong.returncode == 3 and "(HTTP 401)" in wrong.stderr, wrong

    by_env = run_hlocal(project, "push", "transformer", target, "-q",
                        env={"HOME": str(home), "ORAS_USER": "hlocal", "ORAS_PASS": "s3cret"})
    assert by_env.returncode == 0, by_env

    config = home / "docker-config"
    config.mkdir()
    login = base64.b64encode(b"hlocal:s3cret").decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.address: {"auth": login}}}))
    by_config = run_hlocal(project, "push", "transformer", target, "-q",
                           env={"HOME": str(home), "DOCKER_CONFIG": str(config)})
    assert by_config.returncode == 0, by_config
    assert by_config.stdout.strip() == by_env.stdout.strip()
    manifest, _ = auth_registry.get(f"/v2/private/transformer/manifests/{by_env.stdout.strip()}",
                                    accept=OCI_MANIFEST, auth=("hlocal", "s3cret"))
    assert json.loads(manifest)["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_a_loopback_https_registry_is_verified_never_downgraded(tls_registry, project: Path):
    registry, ca = tls_registry
    target = f"oci://{registry.address}/secure/transformer:1"

    untrusted = run_hlocal(project, "push", "transformer", target)
    assert untrusted.returncode == 3, untrusted
    assert "did not complete a TLS handshake (certificate verify failed)" in untrusted.stderr
    assert "hint: trust its CA for this command: REQUESTS_CA_BUNDLE=" in untrusted.stderr

    trusted = run_hlocal(project, "push", "transformer", target, "-q", env={"REQUESTS_CA_BUNDLE": str(ca)})
    assert trusted.returncode == 0, trusted
    assert trusted.stdout.strip().startswith("sha256:")
