"""Release-ready: `python -m build` makes a wheel and an sdist that pass `twine check --strict`, and the wheel,
installed into a fresh venv, runs `hlocal new` and `hlocal check` on its own (no checkout on sys.path)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from importlib.util import find_spec
from pathlib import Path

import pytest
from support import clean_checkout, user_env

from higress_local import __version__

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 600.0  # build isolation and the fresh venv fetch from the package index


def run(argv: list, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=env)
    assert done.returncode == 0, f"$ {' '.join(map(str, argv))}\n{done.stdout}\n{done.stderr}"
    return done


def test_wheel_and_sdist_build_check_and_the_wheel_runs_new_and_check(tmp_path, plugin_wasm):
    for needed in ("build", "twine"):
        if find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed (the dev extra installs it)")
    source = clean_checkout(ROOT, tmp_path / "src")  # a release is built from a clean tree
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=tmp_path)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    assert wheel.name == f"higress_local-{__version__}-py3-none-any.whl"  # the version comes from __init__.py
    assert sdist.name == f"higress_local-{__version__}.tar.gz"
    checked = run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist], cwd=tmp_path)
    assert checked.stdout.count("PASSED") == 2, checked.stdout

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", wheel], cwd=tmp_path, env=user_env())
    hlocal = env_dir / "bin" / "hlocal"
    work = tmp_path / "work"
    work.mkdir()
    where = run([python, "-c", "import higress_local; print(higress_local.__file__)"], cwd=work, env=user_env())
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout

    run([hlocal, "new", "my-plugin"], cwd=work, env=user_env())
    project = work / "my-plugin"
    assert (project / "hlocal.yaml").is_file() and (project / "main.go").is_file()
    shutil.copyfile(plugin_wasm("headers"), project / "main.wasm")  # what `hlocal build` would write
    check = run([hlocal, "check"], cwd=project, env=user_env())
    assert re.search(r"my-plugin", check.stdout), check.stdout
    version = run([hlocal, "--version"], cwd=work, env=user_env())
    assert __version__ in version.stdout
