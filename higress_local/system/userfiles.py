"""Read user-named files safely: regular files only, under a size cap, never blocking.

A path in hlocal.yaml (or the hlocal.yaml itself) can name anything: `/dev/zero` reads forever, a
FIFO blocks the first read until a writer appears, a symlink loop raises deep inside pathlib, and a
huge file fills memory. Everything here decides from `stat` before a single byte is read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import HlocalError, PluginError

MIB = 1024 * 1024
# The largest official Higress plugins are 7-20 MB (alibaba/higress plugins/wasm-go/extensions built
# with Go 1.27); 256 MiB leaves room for unstripped debug builds and refuses only what is surely wrong.
WASM_CAP = 256 * MIB
# hlocal.yaml: stubs and plugin configs inline, but nothing near this size is a hand-written config.
CONFIG_CAP = 16 * MIB

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def size_text(size: int) -> str:
    """256 MiB, 1.5 MiB, 900 bytes."""
    if size >= MIB:
        return f"{size / MIB:g} MiB"
    return f"{size:,} bytes"


def kind_of(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)"), or None for a regular file."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_regular_file(path: Path, cap: int, what: str, *, hint: str, error: type[HlocalError] = PluginError,
                       missing_hint: str | None = None, missing_ok: bool = False) -> os.stat_result | None:
    """The file's stat (symlinks followed) if it is a regular file of at most `cap` bytes; else `error`.

    Nothing is opened. A missing file returns None when `missing_ok`, else raises "not found".
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # ENOTDIR: a file where a directory should be
            if missing_ok:
                return None
            raise error(f"{what} not found: {path}", missing_hint or hint) from None
        raise _os_error(exc, path, what, hint, error) from None
    _check_stat(info, path, cap, what, hint, error)
    return info


def read_regular_file(path: Path, cap: int, what: str, *, hint: str, error: type[HlocalError] = PluginError,
                      missing_hint: str | None = None) -> bytes:
    """The bytes of a regular file of at most `cap` bytes; anything else raises `error` unread."""
    check_regular_file(path, cap, what, hint=hint, error=error, missing_hint=missing_hint)
    # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open() must not wait for a writer.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # removed since the stat
            raise error(f"{what} not found: {path}", missing_hint or hint) from None
        raise _os_error(exc, path, what, hint, error) from None
    try:
        _check_stat(os.fstat(fd), path, cap, what, hint, error)  # what was opened, not what was stat'ed
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(MIB, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:  # it grew while being read
                raise _too_big(path, total, cap, what, hint, error, grew=True)
    except OSError as exc:
        raise _os_error(exc, path, what, hint, error) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def safe_absolute(path: Path) -> Path:
    """`path.resolve()`, except that a symlink loop (RuntimeError before Python 3.13) or an
    unreadable component leaves the path absolute but unresolved, for the reader to report."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def _check_stat(info: os.stat_result, path: Path, cap: int, what: str, hint: str,
                error: type[HlocalError]) -> None:
    kind = kind_of(info.st_mode)
    if kind is not None:
        raise error(f"{what} {path} is {kind}, not a regular file", hint)
    if info.st_size > cap:
        raise _too_big(path, info.st_size, cap, what, hint, error)


def _too_big(path: Path, size: int, cap: int, what: str, hint: str, error: type[HlocalError],
             grew: bool = False) -> HlocalError:
    how = "grew past" if grew else f"is {size_text(size)}, over"
    return error(f"{what} {path} {how} the {size_text(cap)} limit", hint)


def _os_error(exc: OSError, path: Path, what: str, hint: str, error: type[HlocalError]) -> HlocalError:
    if exc.errno == errno.ELOOP:
        return error(f"{what} {path} is a symlink loop (or a chain of more than 40 links)", hint)
    return error(f"cannot read {what} {path}: {exc.strerror or exc}", hint)
