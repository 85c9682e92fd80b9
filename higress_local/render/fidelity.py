"""Behaviour of Higress's Envoy that the rendered stock-Envoy configuration reproduces."""

from __future__ import annotations

from ..emulation import Emulation

BEHAVIOUR_EMULATIONS: list[Emulation] = []
