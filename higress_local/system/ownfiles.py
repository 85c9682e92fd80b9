"""Files in hlocal's own state folder: never through a symlink, readable by the user only, atomic.

A checkout can ship `.hlocal/<name> -> ~/somewhere` or `logs/backend.log -> ~/.bashrc`; following
either would make `up` delete or overwrite the user's files. Every path hlocal writes under
`.hlocal/` goes through here: directories are checked with lstat, files are opened with O_NOFOLLOW
and replaced by rename (which replaces a link, never its target). Folders are 0700, files 0600,
because logs and journals hold request headers such as Authorization.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from ..errors import DiskFull, EnvironmentProblem, UnsafeStatePath

DIR_MODE = 0o700
FILE_MODE = 0o600
READ_CAP = 64 * 1024 * 1024  # state and rendered files are small; a bigger one is not ours
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_LINK_HINT = "remove the link (hlocal never follows links inside its own state folder) and run the command again"


def _unsafe(path: Path, what: str) -> UnsafeStatePath:
    return UnsafeStatePath(f"{path} is {what}; hlocal keeps its own files there and will not use it", _LINK_HINT)


def check_dir(path: Path) -> bool:
    """True when `path` is a real directory, False when absent; UnsafeStatePath for a link or a file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _unsafe(path, f"a symbolic link (to {os.readlink(path)})")
    if not stat.S_ISDIR(st.st_mode):
        raise _unsafe(path, "not a directory")
    return True


def ensure_dir(path: Path, *, private: bool = True) -> Path:
    """Create `path` (and missing parents) as real directories; refuse links on the way."""
    if check_dir(path):
        return path
    parent = path.parent
    if parent != path and not check_dir(parent):
        ensure_dir(parent, private=private)
    try:
        os.mkdir(path, DIR_MODE if private else 0o777)
    except FileExistsError:
        check_dir(path)  # raced with another hlocal: fine if it is a real directory
    except OSError as exc:
        raise _os_problem(exc, path) from None
    return path


def guard_tree(root: Path) -> None:
    """Refuse when `root` or anything below it is a symbolic link (checked without following any)."""
    if not check_dir(root):
        return
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            if os.path.islink(path):
                raise _unsafe(path, f"a symbolic link (to {os.readlink(path)})")


def read_private(path: Path, cap: int = READ_CAP) -> bytes | None:
    """A regular file's bytes without following a link; None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _unsafe(path, "a symbolic link") from None
        raise _os_problem(exc, path) from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _unsafe(path, "not a regular file")
        if st.st_size > cap:
            raise _unsafe(path, f"{st.st_size:,} bytes, more than hlocal ever writes there ({cap:,})")
        return handle.read(cap + 1)


def write_private(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` atomically (a watcher never sees half a file); a link at `path` is replaced, not followed."""
    ensure_dir(path.parent)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise _os_problem(exc, path) from None


def write_text(path: Path, text: str) -> None:
    write_private(path, text.encode("utf-8"))


def fresh_log(path: Path) -> int:
    """A new, empty log file opened for appending (an old file or a link there is removed first); an fd."""
    ensure_dir(path.parent)
    _remove_quietly(path)
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                       FILE_MODE)
    except OSError as exc:
        raise _os_problem(exc, path) from None


def remove_tree(path: Path) -> None:
    """Delete a folder of ours; links inside are unlinked, never followed; the folder itself must not be a link."""
    if not check_dir(path):
        return
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _os_problem(exc, path) from None


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise _unsafe(path, "a directory") from None


def _os_problem(exc: OSError, path: Path) -> EnvironmentProblem:
    if exc.errno in _NO_SPACE:
        return DiskFull(f"no space left to write {path} ({exc.strerror})",
                        "free some disk space (partial files were removed), then run the command again")
    if exc.errno == errno.ELOOP:
        return _unsafe(path, "a symbolic link")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(f"cannot write {path}: {exc.strerror}",
                                  "check the folder's permissions (or pass -f to a project you can write)")
    return EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}", "check the disk and the folder")


def disk_problem(exc: OSError, path: Path) -> EnvironmentProblem:
    """The typed error for an OSError met while writing `path` (disk full, permission, link)."""
    return _os_problem(exc, path)
