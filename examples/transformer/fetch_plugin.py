"""Copy the official Higress transformer plugin out of the gpustack-higress-plugins wheel.

The module is built by others, so it is fetched from the package registry, never committed.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

PLUGIN = "plugins/transformer/2.0.0/plugin.wasm"


def main() -> int:
    target = Path(__file__).resolve().parent / "build" / "transformer.wasm"
    try:
        source = resources.files("gpustack_higress_plugins") / PLUGIN
    except ModuleNotFoundError:
        print("gpustack-higress-plugins is not installed: pip install gpustack-higress-plugins", file=sys.stderr)
        return 3
    target.parent.mkdir(exist_ok=True)
    with resources.as_file(source) as path:
        shutil.copyfile(path, target)
    print(f"fetched {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
