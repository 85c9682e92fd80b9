"""The inspector's ring: the newest N request records, one JSON file each, the oldest removed.

Bounded on disk by count (and each record by the body cap), in memory by nothing: readers list
file names and read the records they show. Files are written under a temporary name and renamed,
so a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from ..system.ownfiles import write_text

DEFAULT_RING = 500
SUFFIX = ".json"
CAPTURE_FILE = "capture.json"  # beside the ring: the collector's mode and counts (collector.write_stats)
# Beside the ring: while this file exists capture is off (gateway.inspect: false). The taps stay in
# Envoy's filter chain and the collector stays up, detached, so `hlocal reload` turns capture on or
# off by writing or removing it, with no restart.
OFF_FILE = "off"


def capture_switched_on(inspect_dir: Path) -> bool:
    return not (Path(inspect_dir) / OFF_FILE).exists()


def switch_capture(inspect_dir: Path, on: bool) -> bool:
    """Turn capture on or off for the collector of the stack whose inspector folder this is;
    returns whether that changed it."""
    off_file = Path(inspect_dir) / OFF_FILE
    if on == (not off_file.exists()):
        return False
    if on:
        off_file.unlink(missing_ok=True)
    else:
        write_text(off_file, "gateway.inspect: false\n")
    return True


class Store:
    def __init__(self, directory: Path, ring: int = DEFAULT_RING) -> None:
        if ring < 1:
            raise ValueError("the inspector keeps at least one request")
        self.directory = Path(directory)
        self.ring = ring
        self._next: int | None = None
        self._kept: list[int] | None = None  # the writer's own list of ids (readers list the folder)

    def ids(self) -> list[int]:
        """The ids of the records kept, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(n[:-len(SUFFIX)]) for n in names if n.endswith(SUFFIX) and n[:-len(SUFFIX)].isdigit())

    def add(self, record: dict[str, Any]) -> int:
        """Keep `record` under the next id; drop what falls out of the ring. Returns the id."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._kept is None:
            self._kept = self.ids()
        kept = self._kept
        if self._next is None:
            self._next = (kept[-1] + 1) if kept else 1
        record_id = self._next
        self._next += 1
        record = {**record, "id": record_id}
        tmp = self.directory / f".{record_id}.tmp"
        tmp.write_text(json.dumps(record, ensure_ascii=False))
        os.replace(tmp, self.path(record_id))
        kept.append(record_id)
        for old in kept[:-self.ring]:
            self.path(old).unlink(missing_ok=True)
        del kept[:-self.ring]
        return record_id

    def path(self, record_id: int) -> Path:
        return self.directory / f"{record_id}{SUFFIX}"

    def get(self, record_id: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(record_id).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def recent(self, limit: int | None = None, after: int = 0) -> Iterator[dict[str, Any]]:
        """Records newer than `after`, newest first, at most `limit`."""
        ids = [i for i in self.ids() if i > after]
        ids.reverse()
        for record_id in ids[:limit] if limit else ids:
            record = self.get(record_id)
            if record is not None:  # rotated away between listing and reading
                yield record

    def capture_stats(self) -> dict[str, Any] | None:
        """What the collector last said of the capture (all or sampled, counts); None before it said."""
        try:
            return json.loads((self.directory.parent / CAPTURE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def disk_bytes(self) -> int:
        total = 0
        for record_id in self.ids():
            try:
                total += self.path(record_id).stat().st_size
            except FileNotFoundError:
                continue
        return total
