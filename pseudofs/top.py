"""`pseudofs top MNT [--interval S]`: a full-screen view of a mount, in the habit of top(1).

Per node: its CPUs, `nr_percpu` (node vmstat, pages) and memory (node meminfo MemTotal and
MemFree, kB). Per cgroup: its per-node `percpu` (memory.numa_stat), the memcg-wide `percpu`
(memory.stat), their difference and its reasons, the finding kinds `pseudofs check` names for
that cgroup, read from MNT/sys/kernel/debug/percpu_test/check when the mount has that file
("?" when it has not). Keys: s sorts by the next column, r reverses, q quits.

It reads only the mount's files, so it works on any mount and topology; a cgroup that vanishes
between listing and reading is left out of that refresh.
"""

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from pseudofs.check import CHECK_FILE, parse_report

NODE_DIR = "/sys/devices/system/node"
CGROOT = "/sys/fs/cgroup"

def kinds_by_cgroup(findings) -> Dict[str, List[str]]:
    """cgroup path -> the finding kinds about it ("/app percpu", "/app N1", "/ memory.current")."""
    out: Dict[str, List[str]] = {}
    for f in findings:
        if f.where.startswith("/") and " " in f.where:
            kinds = out.setdefault(f.where.rsplit(" ", 1)[0], [])
            if f.kind not in kinds:
                kinds.append(f.kind)
    return out


# --- reading the mount ---------------------------------------------------------------------------
def _read(path: str) -> Optional[str]:
    """A file's text, or None if it is gone or unreadable (a cgroup removed meanwhile)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _key(text: Optional[str], key: str) -> Optional[List[str]]:
    """The fields after `key` on its line ("nr_percpu 12", "percpu N0=1 N1=2")."""
    for line in (text or "").splitlines():
        parts = line.split()
        if parts and parts[0] == key:
            return parts[1:]
    return None


def _int(fields: Optional[List[str]]) -> Optional[int]:
    try:
        return int(fields[0]) if fields else None
    except ValueError:
        return None


@dataclass
class NodeRow:
    nid: int
    cpus: str
    nr_percpu: Optional[int]           # pages
    mem_total: Optional[int]           # kB
    mem_free: Optional[int]


@dataclass
class CgroupRow:
    path: str
    nodes: Optional[Dict[int, int]]    # percpu per node from memory.numa_stat (bytes)
    total: Optional[int]               # percpu from memory.stat (bytes)
    kinds: Optional[List[str]] = None  # None: the mount has no check file

    @property
    def diff(self) -> Optional[int]:
        if self.total is None or self.nodes is None:
            return None
        return self.total - sum(self.nodes.values())


@dataclass
class Snapshot:
    nodes: List[NodeRow] = field(default_factory=list)
    cgroups: List[CgroupRow] = field(default_factory=list)
    check: bool = False


def _node_meminfo(text: Optional[str], nid: int, key: str) -> Optional[int]:
    # "Node 0 MemTotal:  8388608 kB" (node_read_meminfo() in drivers/base/node.c)
    return _int((_key((text or "").replace("Node %d " % nid, ""), key + ":")))


def read_nodes(mnt: str) -> List[NodeRow]:
    rows = []
    try:
        names = os.listdir(mnt + NODE_DIR)
    except OSError:
        return rows
    for name in names:
        m = re.fullmatch(r"node(\d+)", name)
        if not m:
            continue
        nid, d = int(m[1]), mnt + NODE_DIR + "/" + name
        meminfo = _read(d + "/meminfo")
        rows.append(NodeRow(nid, (_read(d + "/cpulist") or "?").strip() or "-",
                            _int(_key(_read(d + "/vmstat"), "nr_percpu")),
                            _node_meminfo(meminfo, nid, "MemTotal"),
                            _node_meminfo(meminfo, nid, "MemFree")))
    return sorted(rows, key=lambda r: r.nid)


def _numa(fields: Optional[List[str]]) -> Optional[Dict[int, int]]:
    if fields is None:
        return None
    out = {}
    for f in fields:
        m = re.fullmatch(r"N(\d+)=(\d+)", f)
        if m:
            out[int(m[1])] = int(m[2])
    return out


def read_cgroups(mnt: str) -> List[CgroupRow]:
    """Every cgroup's figures, depth first; a cgroup whose files vanish is skipped."""
    rows, stack = [], ["/"]
    while stack:
        rel = stack.pop()
        d = mnt + CGROOT + ("" if rel == "/" else rel)
        try:
            with os.scandir(d) as it:
                subdirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue                                    # removed since it was listed
        stat, numa = _read(d + "/memory.stat"), _read(d + "/memory.numa_stat")
        if stat is not None or numa is not None or rel == "/":
            rows.append(CgroupRow(rel, _numa(_key(numa, "percpu")),
                                  _int(_key(stat, "percpu"))))
        stack.extend((rel.rstrip("/") + "/" + n) for n in reversed(subdirs))
    return rows


def read_snapshot(mnt: str) -> Snapshot:
    snap = Snapshot(read_nodes(mnt), read_cgroups(mnt))
    text = _read(mnt + CHECK_FILE)
    if text is not None:
        snap.check = True
        try:
            kinds = kinds_by_cgroup(parse_report(text).findings)
        except ValueError:                  # not a check report: no reasons to show
            kinds = {}
        for row in snap.cgroups:
            row.kinds = kinds.get(row.path, [])
    return snap


# --- the screen, as lines ---------------------------------------------------------------------
class View:
    """The sort column (cycled by s) and its direction (r); largest first by default."""

    def __init__(self):
        self.column, self.descending = "TOTAL", True

    def columns(self, snap: Snapshot) -> List[str]:
        return ["TOTAL", "DIFF"] + ["N%d" % n.nid for n in snap.nodes] + ["CGROUP"]

    def cycle(self, snap: Snapshot) -> None:
        cols = self.columns(snap)
        self.column = cols[(cols.index(self.column) + 1) % len(cols)] \
            if self.column in cols else cols[0]
        self.descending = self.column != "CGROUP"

    def sort(self, rows: List[CgroupRow]) -> List[CgroupRow]:
        c = self.column

        def value(r):
            if c == "CGROUP":
                return r.path
            if c == "TOTAL":
                return r.total
            if c == "DIFF":
                return None if r.diff is None else abs(r.diff)
            return (r.nodes or {}).get(int(c[1:]))
        known = [r for r in rows if value(r) is not None]
        known.sort(key=lambda r: (value(r), r.total or 0), reverse=self.descending)
        return known + [r for r in rows if value(r) is None]


def _n(v) -> str:
    return "-" if v is None else str(v)


def _table(header: List[str], rows: List[List[str]], left: int = 1) -> List[str]:
    """Columns right-aligned but the first `left` ones, two spaces apart."""
    widths = [max(len(x[i]) for x in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
    return out


def lines(snap: Snapshot, view: View, mnt: str, interval: float) -> List[str]:
    out = ["pseudofs top - %s - every %gs - sort %s %s - keys: s sort, r reverse, q quit"
           % (time.strftime("%H:%M:%S"), interval, view.column,
              "desc" if view.descending else "asc"),
           "mount: " + mnt,
           "reasons: " + ("pseudofs check, from " + CHECK_FILE.lstrip("/") if snap.check
                          else "? (the mount has no " + CHECK_FILE.lstrip("/") + ")"), ""]
    out += _table(["NODE", "CPUS", "NR_PERCPU(pages)", "MEMTOTAL(kB)", "MEMFREE(kB)"],
                  [["node%d" % n.nid, n.cpus, _n(n.nr_percpu), _n(n.mem_total),
                    _n(n.mem_free)] for n in snap.nodes], left=2)
    out.append("")
    nids = [n.nid for n in snap.nodes]
    rows = []
    for r in view.sort(snap.cgroups):
        diff = r.diff
        if r.kinds is None:
            why = "?" if diff else "-"
        else:
            why = ",".join(r.kinds) or "-"
        rows.append([r.path] + [_n((r.nodes or {}).get(nid)) if r.nodes is not None else "-"
                                for nid in nids] + [_n(r.total), _n(diff), why])
    table = _table(["CGROUP"] + ["N%d" % nid for nid in nids] + ["TOTAL", "DIFF", "REASON"],
                   rows)
    out.append("percpu bytes: per node from memory.numa_stat, TOTAL from memory.stat, "
               "DIFF = TOTAL - the per-node sum")
    return out + table


# --- curses ------------------------------------------------------------------------------------
def _draw(scr, text: List[str]) -> None:
    import curses
    scr.erase()
    h, w = scr.getmaxyx()
    for y, line in enumerate(text[:h]):
        try:
            scr.addnstr(y, 0, line, w - 1, curses.A_BOLD if y == 0 else 0)
        except curses.error:            # the bottom-right cell of a tiny terminal
            pass
    scr.refresh()


def _loop(scr, mnt: str, interval: float) -> int:
    import curses
    try:
        curses.curs_set(0)
    except curses.error:
        pass
    view, snap = View(), read_snapshot(mnt)
    due = time.monotonic() + interval
    while True:
        _draw(scr, lines(snap, view, mnt, interval))
        scr.timeout(max(0, int((due - time.monotonic()) * 1000)))
        ch = scr.getch()
        if ch in (ord("q"), ord("Q")):
            return 0
        if ch == ord("s"):
            view.cycle(snap)
        elif ch == ord("r"):
            view.descending = not view.descending
        elif ch == curses.KEY_RESIZE:
            curses.update_lines_cols()
        if time.monotonic() >= due:
            snap = read_snapshot(mnt)
            due = time.monotonic() + interval


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pseudofs top", description=__doc__.split("\n\n")[0])
    p.add_argument("mountpoint", metavar="MNT")
    p.add_argument("--interval", type=float, default=2.0, metavar="S",
                   help="seconds between refreshes (default 2)")
    args = p.parse_args(argv)
    mnt = os.path.abspath(args.mountpoint)
    if args.interval <= 0:
        p.error("--interval must be positive")
    if not os.path.isdir(mnt + NODE_DIR) or not os.path.isdir(mnt + CGROOT):
        print("pseudofs top: %s: not a pseudofs mount (no %s or %s)" % (mnt, NODE_DIR, CGROOT),
              file=sys.stderr)
        return 2
    import curses
    try:
        return curses.wrapper(_loop, mnt, args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
