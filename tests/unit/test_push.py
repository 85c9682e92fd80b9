"""`hlocal push`: references, the image layout Higress pushes, the push record, and typed failures.

Pushing to a real registry is tested in tests/integration/test_push.py.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from pathlib import Path
from typing import Iterator

import click
import pytest
from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.cli.push import push_command
from higress_local.config.project import load_project
from higress_local.errors import ConfigError, CorruptState
from higress_local.project.push import (
    ICON_MEDIA_TYPE, MODULE_LAYER_MEDIA_TYPE, README_MEDIA_TYPE, SPEC_MEDIA_TYPE, ImageRef, PushedImage, RegistryClient,
    RegistryProblem, doc_layers, load_pushed, module_layer, record_push,
)

from .wasm_builders import plugin as wasm_plugin

WASM = b"\0asm\x01\0\0\0"


@pytest.mark.parametrize("text, registry, repository, tag", [
    ("oci://127.0.0.1:5000/plugins/hello:1.0.0", "127.0.0.1:5000", "plugins/hello", "1.0.0"),
    ("localhost/hello:v1", "localhost", "hello", "v1"),
    ("oci://[::1]:5000/a.b/c-d_e:latest", "[::1]:5000", "a.b/c-d_e", "latest"),
    ("oci://registry.example.com/team/plug__in:1.0.0-rc.1", "registry.example.com", "team/plug__in", "1.0.0-rc.1"),
])
def test_references_parse_into_registry_repository_and_tag(text, registry, repository, tag):
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert str(ref) == f"{registry}/{repository}:{tag}"
    assert ref.pinned("sha256:00") == f"oci://{registry}/{repository}@sha256:00"


@pytest.mark.parametrize("text, problem", [
    ("oci://127.0.0.1:5000/hello", "has no tag"),
    ("oci://127.0.0.1:5000/hello@sha256:" + "a" * 64, "names a digest"),
    ("https://registry.example.com/hello:1", "is not an OCI reference"),
    ("hello:1", "has no registry"),
    ("oci://r.example.com/Hello:1", "is not a valid OCI repository name"),
    ("oci://r.example.com/hello:-1", "is not a valid OCI tag"),
])
def test_malformed_references_are_config_errors_with_a_hint(text, problem):
    with pytest.raises(ConfigError) as caught:
        ImageRef.parse(text)
    assert problem in caught.value.message and caught.value.hint


@pytest.mark.parametrize("registry, loopback", [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.0.0.2", True), ("[::1]:5000", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False), ("vm:5000", False), ("localhost.example.com", False),
])
def test_only_loopback_registries_get_plain_http_without_a_flag(registry, loopback):
    assert ImageRef(registry, "x", "1").loopback is loopback


def test_the_oras_container_keeps_registry_namespace_and_repository_apart():
    # oras's own parser would take `localhost` for a namespace and `a.b` for a registry.
    container = ImageRef.parse("oci://localhost/a.b/c:1").container()
    assert container.manifest_url() == "localhost/v2/a.b/c/manifests/1"
    assert container.upload_blob_url() == "localhost/v2/a.b/c/blobs/uploads/"


def test_the_module_layer_is_a_reproducible_tar_gz_holding_plugin_wasm(tmp_path):
    wasm = WASM + bytes(range(256)) * 40
    first = module_layer(wasm, tmp_path).read_bytes()
    (tmp_path / "again").mkdir()
    second = module_layer(wasm, tmp_path / "again").read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()  # same module, same digest
    assert gzip.decompress(first)  # really gzip
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        [member] = tar.getmembers()
        assert (member.name, member.size, member.mode) == ("plugin.wasm", len(wasm), 0o644)
        assert tar.extractfile(member).read() == wasm
    assert module_layer(wasm + b"x", tmp_path).read_bytes() != first


def test_doc_layers_are_found_in_the_plugin_folder_in_hgctl_order(tmp_path):
    for name in ("README_ZH.md", "icon.png", "README.md", "spec.yaml", "README_EN.md", "README_notes.txt",
                 "README_old.md"):
        (tmp_path / name).write_text(name)
    layers = [(layer.path.name, layer.media_type) for layer in doc_layers(tmp_path)]
    assert layers == [
        ("spec.yaml", SPEC_MEDIA_TYPE),
        ("README.md", README_MEDIA_TYPE),
        ("README_EN.md", "application/vnd.module.wasm.doc.v1.en+markdown"),
        ("README_ZH.md", "application/vnd.module.wasm.doc.v1.zh+markdown"),
        ("icon.png", ICON_MEDIA_TYPE),
    ]
    assert doc_layers(tmp_path / "missing") == []


def _project(tmp_path: Path, wasm: bytes | None = None):
    (tmp_path / "p.wasm").write_bytes(wasm_plugin() if wasm is None else wasm)
    (tmp_path / "hlocal.yaml").write_text("name: demo\nplugins:\n  - {name: p, wasm: p.wasm}\n  - {name: q, wasm: q.wasm}\n")
    return load_project(str(tmp_path / "hlocal.yaml"))


def _image(plugin: str, digest: str) -> PushedImage:
    return PushedImage(plugin=plugin, reference=f"r.example.com/{plugin}:1", digest=digest,
                       url=f"oci://r.example.com/{plugin}@{digest}", wasm_sha256="00",
                       layers=[{"title": "plugin.tar.gz", "mediaType": MODULE_LAYER_MEDIA_TYPE, "digest": digest,
                                "size": 1}], pushed_at="2026-12-02T08:00:00Z")


def test_the_push_record_keeps_the_latest_push_per_plugin(tmp_path):
    project = _project(tmp_path)
    assert load_pushed(project) == {}
    record_push(project, _image("p", "sha256:01"))
    record_push(project, _image("q", "sha256:02"))
    path = record_push(project, _image("p", "sha256:03"))
    assert path == tmp_path / ".hlocal" / "demo" / "pushed.json"
    assert {name: image.digest for name, image in load_pushed(project).items()} == {"p": "sha256:03", "q": "sha256:02"}
    assert path.stat().st_mode & 0o077 == 0  # private, like every file in .hlocal/


@pytest.mark.parametrize("content", ['{"version": 9, "plugins": {}}', '{"version": 1, "plugins": {"p": {"x": 1}}}',
                                     "[]", "not json"])
def test_a_push_record_hlocal_did_not_write_is_refused(tmp_path, content):
    project = _project(tmp_path)
    project.state_dir.mkdir(parents=True)
    (project.state_dir / "pushed.json").write_text(content)
    with pytest.raises(CorruptState) as caught:
        load_pushed(project)
    assert "delete" in caught.value.hint


# ---- failures reach the user typed, fast, as one error and one hint --------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 404

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[int]:
    """A plain-HTTP server on 127.0.0.1 that answers 404 to everything (not a registry)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_an_unreachable_registry_fails_at_once_without_oras_retry_sleeps():
    ref = ImageRef.parse(f"oci://127.0.0.1:{_closed_port()}/x:1")
    started = time.monotonic()
    with pytest.raises(RegistryProblem) as caught:
        RegistryClient(ref, plain_http=True, timeout=5).push([])
    assert time.monotonic() - started < 3  # oras alone would retry for over two minutes
    assert caught.value.exit_code == 3
    assert caught.value.message == f"registry {ref.registry} is unreachable: connection refused"
    assert caught.value.hint == "start the registry or check the address"


def test_https_to_a_plain_http_server_hints_at_insecure(plain_server):
    ref = ImageRef.parse(f"oci://127.0.0.1:{plain_server}/x:1")
    with pytest.raises(RegistryProblem) as caught:
        RegistryClient(ref, plain_http=False, timeout=5).push([])
    assert "did not complete a TLS handshake" in caught.value.message
    assert "--insecure" in caught.value.hint


def test_a_loopback_registry_falls_back_to_plain_http_only_when_tls_is_not_spoken(plain_server):
    ref = ImageRef.parse(f"oci://127.0.0.1:{plain_server}/x:1")
    client = RegistryClient(ref, plain_http=False, http_fallback=True, timeout=5)
    with pytest.raises(RegistryProblem) as caught:
        client.push([])
    # It reached the server over plain HTTP (a 404 there), after the TLS attempt failed.
    assert f"http://127.0.0.1:{plain_server}/v2/ answered HTTP 404" in caught.value.message
    assert client.plain_http


def test_a_server_that_is_not_a_registry_is_named(plain_server):
    ref = ImageRef.parse(f"oci://127.0.0.1:{plain_server}/x:1")
    with pytest.raises(RegistryProblem) as caught:
        RegistryClient(ref, plain_http=True, timeout=5).push([])
    assert f"http://127.0.0.1:{plain_server}/v2/ answered HTTP 404" in caught.value.message


def test_push_is_registered_on_the_cli():
    assert main.get_command(click.Context(main), "push") is push_command


@pytest.fixture
def cli():
    """The `hlocal` group with push on it (registered by cli/main.py; added here too so these tests run alone)."""
    added = "push" not in main.commands
    if added:
        main.add_command(push_command, "push")
    yield main
    if added:
        del main.commands["push"]


@pytest.mark.parametrize("args, code, error, hint", [
    (["push", "p", "oci://127.0.0.1:5000/x"], 2, "has no tag", "add one"),
    (["push", "nope", "oci://127.0.0.1:5000/x:1"], 2, "no plugin named 'nope'", "plugins: p, q"),
    (["push", "q", "oci://127.0.0.1:5000/x:1"], 4, "wasm file not found", "plugins[1].wasm"),
    (["push", "p", "oci://127.0.0.1:{closed}/x:1"], 3, "is unreachable: connection refused", "start the registry"),
])
def test_cli_failures_are_one_error_line_and_one_hint_line(cli, tmp_path, args, code, error, hint):
    _project(tmp_path)
    args = [a.replace("{closed}", str(_closed_port())) for a in args]
    done = CliRunner().invoke(cli, ["-f", str(tmp_path), *args])
    assert done.exit_code == code, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 2, done.output
    assert lines[0].startswith("error: ") and error in lines[0]
    assert lines[1].startswith("hint: ") and hint in lines[1]
    assert not (tmp_path / ".hlocal" / "demo" / "pushed.json").exists()


def test_a_module_that_is_no_proxy_wasm_plugin_is_refused_before_any_network(cli, tmp_path):
    _project(tmp_path, wasm=wasm_plugin(abi=None))
    done = CliRunner().invoke(cli, ["-f", str(tmp_path), "push", "p", f"oci://127.0.0.1:{_closed_port()}/x:1"])
    assert done.exit_code == 4, done.output
    assert "exports no proxy_abi_version_* function" in done.output and "hint: build it as a proxy-wasm" in done.output


def test_cli_help_names_the_reference_form(cli):
    done = CliRunner().invoke(cli, ["push", "--help"])
    assert done.exit_code == 0
    assert "oci://REGISTRY/REPO:TAG" in done.output and "--insecure" in done.output
