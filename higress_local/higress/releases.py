"""Higress gateway releases: which Envoy each runs on, its image, and what its Wasm host links.

One table (version -> Envoy minor, image tag, WASI functions, Higress-only host functions) that
runtime/images.py, wasm/compat.py and runtime/envoys.py read. The host-function sets come from Higress's fork of the
Proxy-Wasm host, higress-group/proxy-wasm-cpp-host include/proxy-wasm/exports.h
(FOR_ALL_WASI_FUNCTIONS, FOR_ALL_HOST_FUNCTIONS), whose stored copies show three stages:

- commit 1d590ef: 15 WASI functions (fd_write … fd_prestat_dir_name), `redis_init`/`redis_call`.
  That is the host of the 2.0.x gateways: Go 1.24 modules fail there with
  "missing import: wasi_snapshot_preview1.sched_yield" (higress-group/higress issue #1768, a
  Go 1.24 plugin on the v2.0 image; johnlanni there, 2025-01-30: the data plane needed an upgrade
  for Go 1.24's wasmexport modules).
- commit 3feeb26 ("add more wasi abis"): + fd_fdstat_set_flags, sched_yield, poll_oneoff,
  path_filestat_get, fd_filestat_get (what Go 1.24's wasip1 runtime imports), and
  `inject_encoded_data_to_filter_chain`. The 2.1 line shipped it: Higress fixed Go 1.24 GC traps
  for 2.1 (higress-group/higress PR #2054, 2025-04-14).
- commit 71f6a9e: every wasi_snapshot_preview1 function except proc_raise (fd_pread,
  path_remove_directory, sock_* …; higress-group/higress-standalone issue #151 shows 2.1-era
  gateways still refusing fd_pread). Higress moved its own plugins to Go 1.24 with 2.1.6 "because
  Go 1.24 plugins depend on the Higress version" (higress-group/higress PR #2532 review), so hlocal
  models the full set from 2.1.6 on.

The upstream-host functions came with higress-group/higress PR #2387 ("add upstream override wasm
abi", merged 2025-06-10); hlocal dates them, and the inject function whose stored copy sits between
the second and third stage, from 2.1.5, the first release cut after that merge. Boundaries inside
the 2.1 line are hlocal's reading of those sources: a module refused here for 2.1.x may still load
on a gateway built later than the stored copies.

Envoy: 2.0 and 2.1 run Higress's Envoy fork of 1.27; 2.2.x runs 1.36 (higress-group/higress PR
#3410 "update the Envoy git submodule to the commit corresponding to 1.36.4" for v2.2.1; issue
#4626: v2.2.4 pins the fork at Envoy 1.36.4). v2.2.4 is the newest release those sources confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..errors import ConfigError
from .hostcalls import WASI_FUNCTIONS

REGISTRY = "higress-registry.cn-hangzhou.cr.aliyuncs.com/higress/gateway"

# FOR_ALL_WASI_FUNCTIONS of the stored copy at 1d590ef (2.0.x).
_WASI_2_0 = frozenset({
    "fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get", "environ_get", "environ_sizes_get",
    "args_get", "args_sizes_get", "clock_time_get", "random_get", "proc_exit", "path_open",
    "fd_prestat_get", "fd_prestat_dir_name",
})
# "add more wasi abis" (stored copy at 3feeb26).
MORE_WASI = frozenset({"fd_fdstat_set_flags", "sched_yield", "poll_oneoff", "path_filestat_get", "fd_filestat_get"})
_WASI_2_1 = _WASI_2_0 | MORE_WASI
# Stored copy at 71f6a9e: the same set stock Envoy 1.40 links (hostcalls.WASI_FUNCTIONS).
_WASI_FULL = WASI_FUNCTIONS

REDIS = frozenset({"proxy_redis_init", "proxy_redis_call"})
INJECT = frozenset({"proxy_inject_encoded_data_to_filter_chain"})
UPSTREAM = frozenset({"proxy_get_upstream_hosts", "proxy_set_upstream_override_host",
                      "proxy_get_upstream_metrics", "proxy_override_upstream_host"})


@dataclass(frozen=True)
class Feature:
    """A group of host functions and the first release whose gateway links them."""

    name: str
    since: str
    functions: frozenset[str]
    module: str  # "wasi_snapshot_preview1" or "env" (Higress-only host functions)


# In order; compat names the feature (and its first release) when a module needs a later one.
FEATURES = (
    Feature("the WASI functions Go 1.24 needs (\"add more wasi abis\")", "2.1.0", MORE_WASI, "wasi_snapshot_preview1"),
    Feature("Higress's Redis host functions", "2.0.0", REDIS, "env"),
    Feature("the inject-data host function", "2.1.5", INJECT, "env"),
    Feature("the upstream-host functions", "2.1.5", UPSTREAM, "env"),
    Feature("the rest of wasi_snapshot_preview1", "2.1.6", _WASI_FULL - _WASI_2_1, "wasi_snapshot_preview1"),
)


@dataclass(frozen=True)
class Release:
    """One Higress gateway release as hlocal models it."""

    version: str  # "2.2.4"
    envoy_minor: str  # "1.36": the Envoy its gateway is built on
    wasi: frozenset[str]
    host_functions: frozenset[str]  # Higress-only "env" functions its host links

    @property
    def image_tag(self) -> str:
        return f"v{self.version}"

    @property
    def image(self) -> str:
        return f"{REGISTRY}:{self.image_tag}"

    @property
    def label(self) -> str:
        return f"Higress {self.version}"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _build(version: str) -> Release:
    key = version_key(version)
    envoy = "1.36" if key >= (2, 2) else "1.27"
    wasi = _WASI_FULL if key >= (2, 1, 6) else _WASI_2_1 if key >= (2, 1) else _WASI_2_0
    functions = frozenset().union(*(f.functions for f in FEATURES if f.module == "env" and key >= version_key(f.since)))
    return Release(version=version, envoy_minor=envoy, wasi=wasi, host_functions=functions)


# The releases hlocal knows. 2.0.0-2.0.7 and 2.1.0-2.1.9 (issue #3274 names 2.1.9 the latest 2.1);
# 2.2.1-2.2.4 (PRs #3410, #3852, #4019, #4448). 2.2.0 is left out: no source here confirms it.
_VERSIONS = ([f"2.0.{n}" for n in range(8)] + [f"2.1.{n}" for n in range(10)]
             + [f"2.2.{n}" for n in range(1, 5)])
RELEASES: Mapping[str, Release] = MappingProxyType({v: _build(v) for v in _VERSIONS})
DEFAULT_VERSION = "2.2.4"
DEFAULT = RELEASES[DEFAULT_VERSION]


def release(version: str | None) -> Release:
    """The release for a `gateway.higress` value ("2.0.7" or "v2.0.7"); None = the default."""
    if version is None:
        return DEFAULT
    text = str(version).strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    if text in RELEASES:
        return RELEASES[text]
    lines = sorted({".".join(v.split(".")[:2]) for v in RELEASES})
    known = ", ".join(f"{line}.{min(version_key(v)[2] for v in RELEASES if v.startswith(line + '.'))}-"
                      f"{max(version_key(v)[2] for v in RELEASES if v.startswith(line + '.'))}" for line in lines)
    raise ConfigError(f"gateway.higress: {version!r} is not a Higress release hlocal knows",
                      f"known: {known} (default {DEFAULT_VERSION}); to run any other image, set gateway.image")


def missing_imports(rel: Release, imports: list[tuple[str, str]]) -> list[tuple[str, str, Feature | None]]:
    """The (module, name) function imports this release's host would not link, each with the
    feature (and so the first release) that brings it, if any."""
    found = []
    for module, name in imports:
        if module in ("wasi_snapshot_preview1", "wasi_unstable"):
            if name in rel.wasi:
                continue
        elif module == "env":
            if not name.startswith("proxy_") or name in rel.host_functions:
                continue
            if not any(name in f.functions for f in FEATURES):
                continue  # not a Higress-only function: compat judges it against the stock set
        else:
            continue
        found.append((module, name, next((f for f in FEATURES if name in f.functions), None)))
    return found


def first_runnable(imports: list[tuple[str, str]]) -> Release | None:
    """The oldest known release whose host links all of these imports (None: none does)."""
    for version in sorted(RELEASES, key=version_key):
        if not missing_imports(RELEASES[version], imports):
            return RELEASES[version]
    return None
