"""Run one program and record its pid and exit status in a file any later shell can read.

Usage: python -m higress_local.supervise STATUS_FILE -- PROGRAM [ARGS...]

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


def _write(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(doc, out)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    status_file, program = argv[0], argv[2:]
    child = subprocess.Popen(program)
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
    code = child.wait()
    doc.update(ended=time.time(), returncode=code if code >= 0 else None,
               signal=signal.Signals(-code).name if code < 0 else None)
    _write(status_file, doc)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
