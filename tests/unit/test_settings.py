"""settings.py: HLOCAL_* read once, typed, with their defaults; replaceable in tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from higress_local import settings
from higress_local.errors import ConfigError, ExitCode


def test_unset_variables_give_the_defaults() -> None:
    read = settings.Settings.from_environ({"XDG_CACHE_HOME": "/x/cache"})
    assert read.cache_dir == Path("/x/cache/hlocal")
    assert (read.envoy, read.higress_image, read.redis_image) == (None, None, None)
    assert read.up_timeout == settings.UP_TIMEOUT_S == 60.0


def test_each_variable_reaches_its_field() -> None:
    read = settings.Settings.from_environ({"HLOCAL_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HLOCAL_ENVOY": "/e",
                                           "HLOCAL_UP_TIMEOUT": "240", "HLOCAL_ENVOY_IMAGE": "local/envoy:1",
                                           "HLOCAL_BACKEND_IMAGE": "", "HLOCAL_REDIS_IMAGE": "r:1"})
    assert read.cache_dir == Path("/c") and read.envoy == "/e" and read.up_timeout == 240.0
    assert (read.envoy_image, read.backend_image, read.redis_image) == ("local/envoy:1", None, "r:1")


def test_a_bad_timeout_is_a_config_error_where_it_is_used() -> None:
    read = settings.Settings.from_environ({"HLOCAL_UP_TIMEOUT": "soon"})  # reading all settings still works
    with pytest.raises(ConfigError) as caught:
        read.up_timeout
    assert caught.value.exit_code == ExitCode.USAGE and "HLOCAL_UP_TIMEOUT='soon'" in caught.value.message


def test_the_environment_is_read_once_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HLOCAL_ENVOY", "/first")
    assert settings.settings().envoy == "/first"
    monkeypatch.setenv("HLOCAL_ENVOY", "/second")
    assert settings.settings().envoy == "/first"
    settings.reset()
    assert settings.settings().envoy == "/second"


def test_override_replaces_fields_for_a_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from higress_local.runtime import envoys

    monkeypatch.setenv("HLOCAL_CACHE_DIR", "/outside")
    with settings.override(cache_dir=Path("/inside")):
        assert envoys.cache_root() == Path("/inside/envoy")
    assert envoys.cache_root() == Path("/outside/envoy")
