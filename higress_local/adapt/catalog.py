"""Host and foreign functions only Higress's Envoy provides, and how the adapted module gets them."""

from __future__ import annotations

from ..emulation import Emulation

HOST_FUNCTION_EMULATIONS: list[Emulation] = []
