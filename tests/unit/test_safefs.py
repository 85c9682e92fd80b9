"""hlocal's own state folder: links are refused, never followed; modes are private; a full disk is typed."""

from __future__ import annotations

import errno
import os

import pytest

from higress_local.system import ownfiles as safefs
from higress_local.errors import DiskFull, UnsafeStatePath
from higress_local.runtime.files import GatewayFiles
from higress_local.runtime.lock import lock_path, stack_lock
from higress_local.errors import StackBusy


def test_write_replaces_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("user data")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "backend.log").symlink_to(victim)
    safefs.write_text(tmp_path / "state" / "backend.log", "ours")
    assert victim.read_text() == "user data"
    assert not (tmp_path / "state" / "backend.log").is_symlink()
    assert (tmp_path / "state" / "backend.log").read_text() == "ours"


def test_a_fresh_log_removes_a_link_and_never_truncates_its_target(tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("keep me")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "backend.log").symlink_to(victim)
    os.close(safefs.fresh_log(logs / "backend.log"))
    assert victim.read_text() == "keep me"
    assert os.stat(logs / "backend.log").st_mode & 0o777 == 0o600


def test_the_files_owner_refuses_a_linked_state_folder_and_touches_nothing(tmp_path):
    elsewhere = tmp_path / "somewhere"
    (elsewhere / "run").mkdir(parents=True)
    (elsewhere / "run" / "precious").write_text("x")
    (tmp_path / ".hlocal").mkdir()
    (tmp_path / ".hlocal" / "demo").symlink_to(elsewhere)
    with pytest.raises(UnsafeStatePath) as caught:
        GatewayFiles(tmp_path / ".hlocal" / "demo").reset()
    assert ".hlocal/demo" in caught.value.message and "symbolic link" in caught.value.message
    assert (elsewhere / "run" / "precious").read_text() == "x"


def test_a_link_anywhere_below_the_state_folder_is_refused(tmp_path):
    state = tmp_path / ".hlocal" / "demo"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "gateway.log").symlink_to(tmp_path / "x")
    with pytest.raises(UnsafeStatePath) as caught:
        GatewayFiles(state).guard()
    assert "logs/gateway.log" in caught.value.message


def test_reset_makes_private_folders(tmp_path):
    files = GatewayFiles(tmp_path / ".hlocal" / "demo")
    files.reset()
    for sub in ("", "ecds", "xds", "modules", "logs", "run"):
        assert os.stat(files.root / sub).st_mode & 0o777 == 0o700


def test_a_full_disk_is_disk_full_and_leaves_no_partial_file(tmp_path, monkeypatch):
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safefs.os, "write", full)
    with pytest.raises(DiskFull) as caught:
        safefs.write_private(tmp_path / "module.wasm", b"x" * 1000)
    assert "no space left" in caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_roll_back_restores_the_accepted_copy_and_missing_files_come_back(tmp_path):
    files = GatewayFiles(tmp_path / "s")
    files.reset()
    ecds = files.ecds("p.json")
    files.write_text(ecds, "v1")
    files.commit()
    swap = files.swap(ecds, "v2")
    assert swap is not None and swap.old_text == "v1" and ecds.read_text() == "v2"
    assert files.swap(ecds, "v2") is None
    files.roll_back([swap])
    assert ecds.read_text() == "v1"
    ecds.unlink()
    assert files.restore_missing([ecds]) == [ecds]
    assert ecds.read_text() == "v1"


def test_a_second_holder_of_the_stack_lock_times_out_naming_the_first(tmp_path):
    state = tmp_path / ".hlocal" / "demo"
    with stack_lock(state, "up"):
        seen = []
        with pytest.raises(StackBusy) as caught:
            with stack_lock(state, "down", wait=0.2, echo=seen.append):
                pass
    assert f"(pid {os.getpid()})" in caught.value.message and "`hlocal up`" in caught.value.message
    assert seen and "waiting for" in seen[0]
    assert os.stat(lock_path(state)).st_mode & 0o777 == 0o600
    with stack_lock(state, "down", wait=0.2):  # released
        pass
