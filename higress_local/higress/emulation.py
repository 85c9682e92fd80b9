"""What the embedded runtime (stock Envoy) does differently from Higress's Envoy, and how hlocal bridges it.

One entry per Higress behaviour or host function. `hlocal check` lists the entries that apply to a
stack and the README's bridging table is written from the same facts. Entries come from two places:
`adapt.catalog` (host and foreign functions rewritten in the module) and `render.fidelity`
(behaviour the rendered Envoy configuration reproduces); `plugins.check_project` joins them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Emulation:
    """One Higress-only feature as the embedded runtime provides it (or refuses it)."""

    key: str  # stable id, e.g. "redis", "clear_route_cache"
    higress: str  # what Higress's Envoy does
    hlocal: str  # how hlocal provides it on stock Envoy ("" when refused)
    differs: str = ""  # what still differs from Higress, said plainly ("" when nothing known)
    refused: bool = False  # True: a plugin needing it is refused on flavor envoy, with `differs` as the reason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

