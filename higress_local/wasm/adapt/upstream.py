"""The upstream-hosts table hlocal writes into an adapted module (read by shim.wat's
proxy_get_upstream_hosts): for each service with `urls` or mock replicas, its cluster name and its hosts as Higress
lists them — a proxy-wasm pair list of address and JSON {"health_status", "metrics"}
(higress-group/proxy-wasm-go-sdk proxywasm/hostcall.go GetUpstreamHosts, internal/serde.go)."""

from __future__ import annotations

import json
import struct
from typing import Iterable, Mapping

from ...config.models import Endpoint, Service
from ...render.endpoints import service_endpoints

TABLE_ADDRESS = 10288  # shim.wat: the upstream-hosts block of the scratch map
TABLE_END = 12288
ENTRY_SIZE = 16


def pair_list(pairs: list[tuple[str, str]]) -> bytes:
    """proxy-wasm's map encoding: count, (key size, value size)*, then each key and value NUL-ended."""
    encoded = [(k.encode(), v.encode()) for k, v in pairs]
    sizes = b"".join(struct.pack("<II", len(k), len(v)) for k, v in encoded)
    return struct.pack("<I", len(encoded)) + sizes + b"".join(k + b"\0" + v + b"\0" for k, v in encoded)


def host_pairs(endpoints: tuple[Endpoint, ...]) -> list[tuple[str, str]]:
    """Every endpoint healthy (hlocal runs no health checks), with the metrics hlocal.yaml gives it."""
    return [(e.host, json.dumps({"health_status": "Healthy", "metrics": e.metrics}, separators=(",", ":")))
            for e in endpoints]


def upstream_table(services: Iterable[Service], replicas: Mapping[str, list] | None = None,
                   address: int = TABLE_ADDRESS) -> bytes:
    """The table's bytes as they sit at `address` (pointers inside it are absolute); `replicas` says
    where each mock service's replicas listen (Layout.replicas)."""
    listed = [(s, service_endpoints(s, replicas or {})) for s in services]
    clusters = [(s.cluster_name().encode(), pair_list(host_pairs(e))) for s, e in listed if e]
    if not clusters:
        return b""
    at = address + 4 + ENTRY_SIZE * len(clusters)
    entries, blobs = [], []
    for name, pairs in clusters:
        entries.append(struct.pack("<IIII", at, len(name), at + len(name), len(pairs)))
        blobs.append(name + pairs)
        at += len(name) + len(pairs)
    return struct.pack("<I", len(clusters)) + b"".join(entries) + b"".join(blobs)


def table_room() -> int:
    return TABLE_END - TABLE_ADDRESS
