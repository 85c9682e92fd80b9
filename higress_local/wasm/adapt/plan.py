"""Decide, from a module's imports and exports alone, which emulations its copy gets (or why not).

Shared by `compat` (what `hlocal check` says) and `adapter` (what `up` serves), so the two never
disagree. Nothing here reads function bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .catalog import BY_HOST_FUNCTION, GET_LOG_LEVEL, INJECT_DATA, REDIS, UPSTREAM_HOSTS
from .upstream import TABLE_ADDRESS, table_room

if TYPE_CHECKING:
    from ..module import ModuleInfo

GO_BUILD_SECTION = "go:buildid"
SCRATCH = (4096, 12288)  # see shim.wat: Go's wasip1 linker leaves this range unused
LOG_LEVEL_ADDRESS = 4096
# gateway.wasm_log_level -> Envoy's level number, as Higress's get_log_level answers it.
LOG_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warning": 3, "warn": 3, "error": 4, "critical": 5, "off": 6}
REDIS_RESPONSE_EXPORTS = ("proxy_on_http_call_response", "proxy_on_redis_call_response")
INJECT_IMPORT = "proxy_inject_encoded_data_to_filter_chain"
# The request buffer limit the copy enforces (shim.wat, decoder buffer limit block): Higress's
# downstream.connectionBufferLimits default, or gateway.downstream.connection_buffer_limits.
DEFAULT_REQUEST_BUFFER_LIMIT = 32768
REQUEST_BUFFER_LIMIT_ADDRESS = 4608
REQUEST_BODY_EXPORT = "proxy_on_request_body"
RESPONSE_BODY_EXPORT = "proxy_on_response_body"
DECODER_BUFFER_LIMIT = "decoder_buffer_limit"  # the render/fidelity.py entry that describes it
BUFFER_LIMIT_HOST_FUNCTIONS = ("proxy_get_property", "proxy_send_local_response")  # what that block calls
UPSTREAM_IMPORTS = ("proxy_get_upstream_hosts", "proxy_set_upstream_override_host")
UPSTREAM_OLDER = ("proxy_get_upstream_metrics", "proxy_override_upstream_host")  # earlier names: not emulated


@dataclass
class MergePlan:
    """What to change: which shim functions take over which imports and exports."""

    redirects: list[str] = field(default_factory=list)  # import names (module "env") the shim takes over
    exports: list[str] = field(default_factory=list)  # export names the shim takes over
    retire: list[str] = field(default_factory=list)  # imports only Higress has: unused after the merge
    data: list[tuple[int, bytes]] = field(default_factory=list)  # extra segments: (address, bytes)
    renames: dict[str, str] = field(default_factory=dict)  # export name -> new name
    export_from: dict[str, str] = field(default_factory=dict)  # export name -> shim export other than export:NAME


@dataclass
class AdaptPlan:
    """The emulations a module gets on stock Envoy, the lines `check` prints, and any refusal."""

    emulations: list[str] = field(default_factory=list)  # catalog keys
    adaptations: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    merge: MergePlan = field(default_factory=MergePlan)

    @property
    def rewrites(self) -> bool:
        return bool(self.merge.redirects or self.merge.exports)


def _not_go(what: str) -> str:
    return (f"imports {what}, which exists only in the Higress gateway; hlocal emulates it only in "
            f"modules built by Go for wasip1 (it keeps its state in memory Go's linker leaves unused) "
            f"and this module has no {GO_BUILD_SECTION} section; run it with the docker runtime "
            f"(flavor higress)")


def plan_for(info: "ModuleInfo", wasm_log_level: str = "info", upstream_hosts: bytes = b"",
             request_buffer_limit: int = DEFAULT_REQUEST_BUFFER_LIMIT) -> AdaptPlan:
    """What the copy served to stock Envoy gets; problems say precisely why a module cannot run."""
    plan = AdaptPlan()
    env = set(info.host_functions)
    is_go = GO_BUILD_SECTION in info.custom_sections
    refused = sorted({BY_HOST_FUNCTION[n].key for n in env if n in BY_HOST_FUNCTION and BY_HOST_FUNCTION[n].refused})
    for key in refused:
        entry = next(e for e in BY_HOST_FUNCTION.values() if e.key == key)
        names = ", ".join(f"env.{n}" for n in sorted(env) if BY_HOST_FUNCTION.get(n) is entry)
        plan.problems.append(f"imports {names}, which exists only in the Higress gateway and hlocal "
                             f"cannot emulate on stock Envoy ({entry.differs.removeprefix('refused: ')}); "
                             f"run it with the docker runtime (flavor higress)")
    redis = sorted(n for n in env if BY_HOST_FUNCTION.get(n) is REDIS)
    if redis:
        missing = [e for e in REDIS_RESPONSE_EXPORTS if not info.exports_kind(e, "func")]
        if not is_go:
            plan.problems.append(_not_go(", ".join(f"env.{n}" for n in redis) + " (Redis)"))
        elif missing:
            plan.problems.append(f"imports {', '.join(f'env.{n}' for n in redis)} (Redis, Higress only) but "
                                 f"does not export {', '.join(missing)}, through which hlocal's Redis "
                                 f"emulation delivers replies; run it with the docker runtime (flavor higress)")
        else:
            plan.emulations.append(REDIS.key)
            plan.adaptations.append(f"Redis ({', '.join(redis)}) through hlocal's Redis relay: commands "
                                    f"become HTTP calls on the same cluster")
            plan.merge.redirects += redis
            plan.merge.retire += redis
            if "proxy_get_buffer_bytes" in env:
                plan.merge.redirects.append("proxy_get_buffer_bytes")
            plan.merge.exports.append("proxy_on_http_call_response")
    if env & set(UPSTREAM_IMPORTS + UPSTREAM_OLDER):
        _plan_upstream_hosts(plan, env, is_go, upstream_hosts)
    if INJECT_IMPORT in env:
        _plan_inject(plan, info, env, is_go)
    if "get_log_level" in info.foreign_candidates and "proxy_call_foreign_function" in env and is_go:
        level = LOG_LEVELS.get(wasm_log_level, LOG_LEVELS["info"])
        plan.emulations.append(GET_LOG_LEVEL.key)
        plan.adaptations.append("foreign function get_log_level answers the stack's gateway.wasm_log_level "
                                "(Higress answers Envoy's wasm log level)")
        plan.merge.redirects.append("proxy_call_foreign_function")
        plan.merge.data.append((LOG_LEVEL_ADDRESS, level.to_bytes(4, "little")))
    if is_go and info.exports_kind(REQUEST_BODY_EXPORT, "func"):
        _plan_request_buffer_limit(plan, info, request_buffer_limit)
    return plan


def _spare_import_slots(info: "ModuleInfo") -> int:
    """Function imports the module makes twice (merge.py reuses the second copy's slot)."""
    keys = [(i.module, i.name, i.type_index) for i in info.imports if i.kind == "func"]
    return len(keys) - len(set(keys))


def _plan_request_buffer_limit(plan: AdaptPlan, info: "ModuleInfo", limit: int) -> None:
    """Higress's 413 for a request body a plugin buffers beyond the stream's limit (shim.wat)."""
    missing = sorted(set(BUFFER_LIMIT_HOST_FUNCTIONS) - set(info.host_functions))
    if len(missing) > _spare_import_slots(info) + len(plan.merge.retire):
        plan.adaptations.append(f"request buffer limit NOT enforced: the module lacks {', '.join(missing)} and has "
                                f"no spare import slot for them; a body it buffers passes here up to 100 MiB, "
                                f"where Higress answers 413 above gateway.downstream.connection_buffer_limits")
        return
    plan.emulations.append(DECODER_BUFFER_LIMIT)
    plan.adaptations.append("request buffer limit as on Higress: a body the plugin buffers beyond "
                            "gateway.downstream.connection_buffer_limits (32768 bytes by default) gets 413, "
                            "unless the request raised its limit (SetRequestBodyBufferLimit)")
    plan.merge.exports.append(REQUEST_BODY_EXPORT)
    if info.exports_kind(RESPONSE_BODY_EXPORT, "func"):
        if RESPONSE_BODY_EXPORT in plan.merge.exports:  # the inject-data emulation holds responses itself
            plan.adaptations.append("response buffer limit NOT enforced (the inject-data emulation takes the "
                                    "response body callback): Higress fails a response buffered beyond it")
        else:
            plan.adaptations.append("response buffer limit as on Higress: a response body the plugin buffers "
                                    "beyond it gets 500 (or a reset once its headers went out), unless the "
                                    "request raised it (SetResponseBodyBufferLimit or SetRequestBodyBufferLimit)")
            plan.merge.exports.append(RESPONSE_BODY_EXPORT)
            plan.merge.export_from[RESPONSE_BODY_EXPORT] = "limit:" + RESPONSE_BODY_EXPORT
    plan.merge.data.append((REQUEST_BUFFER_LIMIT_ADDRESS, limit.to_bytes(4, "little")))


def _plan_upstream_hosts(plan: AdaptPlan, env: set[str], is_go: bool, table: bytes) -> None:
    """The host list from a table written into the module; the pinned host through a request header."""
    used = [n for n in UPSTREAM_IMPORTS if n in env]
    older = [n for n in UPSTREAM_OLDER if n in env]
    if older:
        plan.problems.append(f"imports {', '.join(f'env.{n}' for n in older)}, which exists only in the Higress "
                             f"gateway and hlocal cannot emulate on stock Envoy (it emulates "
                             f"{' and '.join(UPSTREAM_IMPORTS)}); run it with the docker runtime (flavor higress)")
        return
    if not is_go:
        plan.problems.append(_not_go(", ".join(f"env.{n}" for n in used) + " (upstream hosts)"))
        return
    if len(table) > table_room():
        plan.problems.append(f"imports env.proxy_get_upstream_hosts; the hosts of the services with urls or "
                             f"mock replicas take {len(table)} bytes, more than the {table_room()} hlocal's "
                             f"emulation holds: list fewer endpoints or shorter metrics")
        return
    plan.emulations.append(UPSTREAM_HOSTS.key)
    plan.adaptations.append("upstream hosts (" + ", ".join(used) + "): the hosts of services with urls or mock "
                            "replicas, written into the module; the pinned host goes to the cluster's "
                            "override-host policy")
    plan.merge.redirects += used
    plan.merge.retire += used
    plan.merge.data.append((TABLE_ADDRESS, table or bytes(4)))


def _plan_inject(plan: AdaptPlan, info: "ModuleInfo", env: set[str], is_go: bool) -> None:
    """proxy_inject_encoded_data_to_filter_chain: the shim edits the response body Envoy holds."""
    if not is_go:
        plan.problems.append(_not_go(f"env.{INJECT_IMPORT} (inject data)"))
        return
    if not info.exports_kind("proxy_on_response_body", "func"):
        plan.problems.append(f"imports env.{INJECT_IMPORT} (Higress only) but does not export "
                             f"proxy_on_response_body, through which hlocal's emulation injects; run it "
                             f"with the docker runtime (flavor higress)")
        return
    plan.emulations.append(INJECT_DATA.key)
    plan.adaptations.append(f"{INJECT_IMPORT}: injected bytes replace or extend the response body Envoy "
                            f"holds for the plugin, then the response resumes")
    plan.merge.redirects.append(INJECT_IMPORT)
    plan.merge.retire.append(INJECT_IMPORT)
    if "proxy_set_effective_context" in env:
        plan.merge.redirects.append("proxy_set_effective_context")
    plan.merge.exports.append("proxy_on_response_body")
