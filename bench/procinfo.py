"""CPU seconds and resident memory of process trees, read from /proc (Linux only, no extra packages)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2:].split()


def children_map() -> dict[int, list[int]]:
    """Parent pid → child pids, for every process visible now."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def tree(root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """``root`` and all its descendants alive now."""
    kids = children_map() if kids is None else kids
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def cpu_seconds(root: int, kids: dict[int, list[int]] | None = None) -> float:
    """User + system CPU of a tree: live processes, plus children the root has already reaped."""
    total = 0
    for pid in tree(root, kids):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the state field: utime=11, stime=12, cutime=13, cstime=14 (0-based from field 3).
        total += int(fields[11]) + int(fields[12])
        if pid == root:
            total += int(fields[13]) + int(fields[14])
    return total / _TICK


def rss_bytes(root: int, kids: dict[int, list[int]] | None = None) -> int:
    """Resident set size of a tree (sum over its processes)."""
    total = 0
    for pid in tree(root, kids):
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * _PAGE
    return total


def pss_bytes(root: int, kids: dict[int, list[int]] | None = None) -> int:
    """Proportional set size of a tree: pages shared by forked pool processes counted once, not per process
    as in :func:`rss_bytes` (from /proc/PID/smaps_rollup; 0 where the kernel does not offer it)."""
    total = 0
    for pid in tree(root, kids):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def memory_mib(roots: dict[str, int]) -> dict[str, object]:
    """RSS and PSS (MiB) of named process trees now, per tree and in total, with each tree's process count."""
    kids = children_map()
    mib = 1024 * 1024
    rss = {name: rss_bytes(pid, kids) for name, pid in roots.items()}
    pss = {name: pss_bytes(pid, kids) for name, pid in roots.items()}
    return {"rss_mib": round(sum(rss.values()) / mib, 1), "pss_mib": round(sum(pss.values()) / mib, 1),
            "by_process": {name: {"rss_mib": round(rss[name] / mib, 1), "pss_mib": round(pss[name] / mib, 1),
                                  "processes": len(tree(pid, kids))} for name, pid in roots.items()}}


def own_cpu_seconds() -> float:
    """This process's CPU (all threads)."""
    usage = os.times()
    return usage.user + usage.system


@dataclass
class RssSampler:
    """Samples the RSS of named process trees every ``interval`` seconds in a background thread."""

    roots: Callable[[], dict[str, int]]
    interval: float = 0.5
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            kids = children_map()
            self.samples.append((time.monotonic() - start,
                                 {name: rss_bytes(pid, kids) for name, pid in self.roots().items()}))
            self._stop.wait(self.interval)

    def summary(self, names: Iterable[str]) -> dict[str, object]:
        """Peak RSS (MiB) of the named trees together, overall and per third of the run: flat means similar."""
        names = list(names)
        totals = [(t, sum(s.get(n, 0) for n in names)) for t, s in self.samples]
        if not totals:
            return {"samples": 0}
        mib = 1024 * 1024
        third = max(len(totals) // 3, 1)
        thirds = [totals[:third], totals[third:2 * third] or totals[-1:], totals[2 * third:] or totals[-1:]]
        peaks = [round(max(v for _, v in part) / mib, 1) for part in thirds]
        per_tree = {n: round(max(s.get(n, 0) for _, s in self.samples) / mib, 1) for n in names}
        step = max(len(totals) // 20, 1)
        return {
            "samples": len(totals),
            "peak_mib": round(max(v for _, v in totals) / mib, 1),
            "peak_mib_by_third": peaks,
            "growth_last_vs_first_third": round(peaks[2] / peaks[0], 3) if peaks[0] else None,
            "peak_mib_by_process": per_tree,
            # At most ~20 evenly spaced (seconds, MiB) points: enough to see a trend.
            "series": [(round(t, 1), round(v / mib, 1)) for t, v in totals[::step]],
        }
