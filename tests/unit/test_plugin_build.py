"""Unit tests for tests/plugin_build.py: the go build command line and the cache key (no compiler runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import plugin_build


@pytest.fixture(autouse=True)
def fixed_go_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin_build, "_go_version", lambda go: "go1.99.0")


GO = Path("/opt/go/bin/go")


def test_argv_without_ldflags_is_the_plain_build():
    assert plugin_build.build_argv(GO, Path("out.wasm")) == [
        str(GO), "build", "-trimpath", "-buildmode=c-shared", "-o", "out.wasm", "."]


def test_argv_passes_ldflags_as_one_argument():
    argv = plugin_build.build_argv(GO, Path("out.wasm"), "-X main.buildTag=b2 -s")
    assert argv[argv.index("-ldflags") + 1] == "-X main.buildTag=b2 -s"
    assert argv[-3:] == ["-o", "out.wasm", "."]


def test_ldflags_are_part_of_the_cache_key():
    plain = plugin_build.source_key("headers", GO)
    b1 = plugin_build.source_key("headers", GO, "-X main.buildTag=b1")
    b2 = plugin_build.source_key("headers", GO, "-X main.buildTag=b2")
    assert len({plain, b1, b2}) == 3
    assert plugin_build.source_key("headers", GO, "-X main.buildTag=b1") == b1


def test_no_ldflags_keeps_the_plain_key():
    """Empty and absent ldflags build the same thing, so they share the cached module."""
    assert plugin_build.source_key("headers", GO, None) == plugin_build.source_key("headers", GO, "")


def test_cached_module_is_returned_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(plugin_build, "find_go", lambda: GO)
    key = plugin_build.source_key("headers", GO, "-X main.buildTag=b1")
    cached = tmp_path / f"headers-{key[:16]}.wasm"
    cached.write_bytes(b"\0asm\1\0\0\0")

    def no_build(*args, **kwargs):
        raise AssertionError("go build must not run for a cached module")

    monkeypatch.setattr(plugin_build.subprocess, "run", no_build)
    assert plugin_build.build_plugin("headers", tmp_path, ldflags="-X main.buildTag=b1") == cached
