"""fileguard: only regular files under a cap are read; everything else is refused from stat, unread."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from higress_local.system import userfiles as fileguard
from higress_local.errors import ConfigError, PluginError

pytestmark = pytest.mark.timeout(20)  # a FIFO or /dev/zero that is read would hang or run forever


def read(path: Path, cap: int = 1024, **kwargs):
    return fileguard.read_regular_file(path, cap, "wasm file", hint="fix plugins[0].wasm", **kwargs)


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "m.wasm"
    file.write_bytes(b"\0asm" + bytes(range(256)) * 3)
    assert read(file) == file.read_bytes()


def test_a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "m.wasm"
    file.write_bytes(b"x" * 1024)
    assert len(read(file, cap=1024)) == 1024
    file.write_bytes(b"x" * 1025)
    with pytest.raises(PluginError) as caught:
        read(file, cap=1024)
    assert caught.value.message == f"wasm file {file} is 1,025 bytes, over the 1,024 bytes limit"
    assert caught.value.hint == "fix plugins[0].wasm"


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.wasm"
    target.write_bytes(b"module")
    link = tmp_path / "link.wasm"
    link.symlink_to(target)
    assert read(link) == b"module"


def test_a_missing_file_says_not_found_with_its_own_hint(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        read(tmp_path / "nope.wasm", missing_hint="build it first")
    assert caught.value.message == f"wasm file not found: {tmp_path / 'nope.wasm'}"
    assert caught.value.hint == "build it first"
    # A file where a directory should be is "not found" too, not an OS error text.
    (tmp_path / "file").write_text("x")
    with pytest.raises(PluginError, match="not found"):
        read(tmp_path / "file" / "m.wasm")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "m.wasm"
    os.mkfifo(fifo)
    with pytest.raises(PluginError) as caught:
        read(fifo)
    assert caught.value.message == f"wasm file {fifo} is a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize(("device", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_a_device_is_refused_unread(device: str, kind: str) -> None:
    with pytest.raises(PluginError) as caught:
        read(Path(device))
    assert caught.value.message == f"wasm file {device} is {kind}, not a regular file"


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "m.wasm"
    link.symlink_to("/dev/zero")
    with pytest.raises(PluginError, match="is a character device, not a regular file"):
        read(link)


def test_a_symlink_loop_is_refused_without_a_traceback(tmp_path: Path) -> None:
    loop = tmp_path / "m.wasm"
    loop.symlink_to(loop)
    with pytest.raises(PluginError) as caught:
        read(loop)
    assert caught.value.message.startswith(f"wasm file {loop} is a symlink loop")
    # Two links pointing at each other are a loop too.
    a, b = tmp_path / "a.wasm", tmp_path / "b.wasm"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(PluginError, match="symlink loop"):
        read(a)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        read(tmp_path)
    assert caught.value.message == f"wasm file {tmp_path} is a directory, not a regular file"


def test_a_unix_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.wasm"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(PluginError, match="is a socket, not a regular file"):
            read(path)


def test_a_huge_sparse_file_is_refused_from_its_size_alone(tmp_path: Path) -> None:
    big = tmp_path / "big.wasm"
    with big.open("wb") as out:
        out.truncate(fileguard.WASM_CAP + 1)  # sparse: takes no disk, and reading it would take 256 MiB
    with pytest.raises(PluginError) as caught:
        fileguard.read_regular_file(big, fileguard.WASM_CAP, "wasm file", hint="h")
    assert caught.value.message == f"wasm file {big} is 256 MiB, over the 256 MiB limit"


def test_the_error_type_is_the_callers(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "hlocal.yaml")
    with pytest.raises(ConfigError) as caught:
        fileguard.read_regular_file(tmp_path / "hlocal.yaml", fileguard.CONFIG_CAP, "config file",
                                    hint="point -f at a file", error=ConfigError)
    assert caught.value.exit_code == 2 and "is a FIFO" in caught.value.message


def test_check_regular_file_reads_nothing_and_tolerates_a_missing_file_when_asked(tmp_path: Path) -> None:
    assert fileguard.check_regular_file(tmp_path / "later.wasm", 10, "wasm file", hint="h", missing_ok=True) is None
    file = tmp_path / "m.wasm"
    file.write_bytes(b"12345")
    assert fileguard.check_regular_file(file, 10, "wasm file", hint="h").st_size == 5
    with pytest.raises(PluginError, match="over the 4 bytes limit"):
        fileguard.check_regular_file(file, 4, "wasm file", hint="h", missing_ok=True)


def test_safe_absolute_survives_a_symlink_loop(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert fileguard.safe_absolute(loop / "m.wasm") == tmp_path / "loop" / "m.wasm"
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    assert fileguard.safe_absolute(tmp_path / "alias" / "m.wasm") == real.resolve() / "m.wasm"
