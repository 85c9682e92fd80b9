"""Run one program and record its pid and exit status in a file any later shell can read.

Usage: python -m higress_local.system.supervise STATUS_FILE -- PROGRAM [ARGS...]

hlocal does not stay running after `up`, so it cannot wait() for what it started; this small
parent can. It forwards SIGTERM/SIGINT to the program, waits for it, and writes
{"pid", "started", "ended", "returncode", "signal"} atomically to STATUS_FILE.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _write(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(doc, out)
    os.replace(tmp, path)


def _die_with(parent: int) -> None:
    """In the child before exec: get SIGTERM when the supervisor dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: `hlocal down` still finds the child by its marker
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    status_file, program = argv[0], argv[2:]
    parent = os.getpid()
    child = subprocess.Popen(program, preexec_fn=lambda: _die_with(parent))
    doc = {"pid": child.pid, "supervisor": os.getpid(), "started": time.time(), "ended": None,
           "returncode": None, "signal": None}
    _write(status_file, doc)

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    code = child.wait()
    doc.update(ended=time.time(), returncode=code if code >= 0 else None,
               signal=signal.Signals(-code).name if code < 0 else None)
    _write(status_file, doc)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
