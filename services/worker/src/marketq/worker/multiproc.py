"""prometheus-client's multiprocess mode for a prefork worker, with dead children compacted.

Every process that records a metric writes ``<type>_<pid>.db`` (an mmap of key -> value)
in ``PROMETHEUS_MULTIPROC_DIR``; the main process serves the sum over all files. The
library never removes a file, so a worker that recycles its children
(``--max-tasks-per-child``, ``--max-memory-per-child``) would grow the directory by two
files per child for ever, and every scrape would read them all.

``compact`` folds the counter and histogram files of processes that no longer exist into
one archive file per type (``counter_archive.db``, ``histogram_archive.db``) and deletes
them, so no count is lost and the directory holds the live processes' files plus two. The
archive is written to a temporary name and renamed into place, then the dead files are
removed; a collector reading between those two steps would count them twice, so
``compact`` and ``collect`` hold one lock (``flock`` on ``.lock`` in the directory: the
HTTP thread and the periodic compaction may race, and so might a second reader).

Gauges are not written by the children (the worker's gauges are computed at scrape time
by the main process), but ``mark_process_dead`` still removes any ``live*`` gauge file a
dead process left, as the library documents.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = logging.getLogger("marketq.worker.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_ROOT = "/tmp/marketq-metrics"  # noqa: S108  (an emptyDir in the chart)
ARCHIVE = "archive"
SUMMED_TYPES = ("counter", "histogram")  # raw values of these add up across processes
LOCK_FILE = ".lock"


def default_dir(queue: str) -> str:
    return os.path.join(DEFAULT_ROOT, queue)


def prepare_dir(path: str) -> None:
    """Create the directory and remove what a previous worker left in it: its pids are
    gone, and its counts belong to a process that no longer exists (a restart resets
    counters, which Prometheus' rate() handles)."""
    directory = Path(path)
    if directory.exists():
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    with open(os.path.join(path, LOCK_FILE), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _pid_of(filename: str) -> int | None:
    stem = os.path.basename(filename)[: -len(".db")]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def process_exists(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
        return not fields or fields[0] != b"Z"
    except OSError:
        return True  # no /proc: trust kill(0)


def _add_file(totals: dict[str, list[float]], filename: str) -> None:
    values = MmapedDict.read_all_values_from_file(filename)  # type: ignore[no-untyped-call]
    for key, value, timestamp, _pos in values:
        slot = totals.setdefault(key, [0.0, 0.0])
        slot[0] += value
        slot[1] = max(slot[1], timestamp)


def _write_archive(path: str, typ: str, totals: dict[str, list[float]]) -> None:
    final = os.path.join(path, f"{typ}_{ARCHIVE}.db")
    temporary = os.path.join(path, f".{typ}_{ARCHIVE}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    archive = MmapedDict(temporary)  # type: ignore[no-untyped-call]
    try:
        for key, (value, timestamp) in totals.items():
            archive.write_value(key, value, timestamp)  # type: ignore[no-untyped-call]
    finally:
        archive.close()  # type: ignore[no-untyped-call]
    os.replace(temporary, final)


def compact(path: str, *, alive: Iterable[int] = ()) -> int:
    """Fold the files of dead processes into the archives; returns how many were removed.

    ``alive`` lists pids known to run (the pool's children, this process) so they are not
    even checked; any other pid is checked with ``process_exists``."""
    known = set(alive) | {os.getpid()}
    removed = 0
    with locked(path):
        dead_pids: set[int] = set()
        for filename in glob.glob(os.path.join(path, "*.db")):
            pid = _pid_of(filename)
            if pid is not None and pid not in known and not process_exists(pid):
                dead_pids.add(pid)
        if not dead_pids:
            return 0
        for typ in SUMMED_TYPES:
            dead_files = [os.path.join(path, f"{typ}_{pid}.db") for pid in sorted(dead_pids)]
            dead_files = [name for name in dead_files if os.path.exists(name)]
            if not dead_files:
                continue
            totals: dict[str, list[float]] = {}
            archive = os.path.join(path, f"{typ}_{ARCHIVE}.db")
            if os.path.exists(archive):
                _add_file(totals, archive)
            for name in dead_files:
                _add_file(totals, name)
            _write_archive(path, typ, totals)
            for name in dead_files:
                os.unlink(name)
                removed += 1
        for pid in dead_pids:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
            # Gauges of other modes keep their pid label: a dead process's are stale.
            for name in glob.glob(os.path.join(path, f"gauge_*_{pid}.db")):
                os.unlink(name)
                removed += 1
    return removed


class LockedMultiProcessCollector(Collector):
    """``MultiProcessCollector`` reading under the compaction lock."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._collector = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        with locked(self._path):
            return list(self._collector.collect())  # type: ignore[no-untyped-call]
