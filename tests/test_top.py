"""`pseudofs top` (pseudofs/top.py): its parser of `pseudofs check` reports against the model's
own report; what it reads from a mount against the model; cgroups vanishing while it reads;
and the real thing in a terminal: run under tmux, its screen compared with the mount's files.
"""

import os
import re
import subprocess
import sys
import threading
import time

from daemon_util import REPO, wait_until
from pseudofs import check, top
from pseudofs.fs.routes import build_tree
from pseudofs.config import parse_config
from pseudofs.fs.tree import Caller, OpenFile
from pseudofs.model.procs import NoHost

# a node with CPUs and no memory, a memory-only node, possible CPUs in no node, and a cgroup
# name with ": " in it: every kind of finding, and a `where` the parser must not split
CONFIG = """\
kernel: {accounting: per-node}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 1G}
    - {id: 1, cpus: "3", memory: 0}
    - {id: 2, cpus: "", memory: 1G}
  possible_cpus: "0-5"
root_subtree_control: [memory]
cgroups:
  - path: /app
    subtree_control: [memory]
    allocations:
      - {size: 24, count: 30, tag: warm}
  - path: /app/a
    allocations:
      - {size: 200, count: 7, tag: a}
  - path: "/odd: name"
    allocations:
      - {size: 40, count: 3, tag: odd}
"""
PCT = "/sys/kernel/debug/percpu_test"


def _tree():
    t = build_tree(parse_config(CONFIG), NoHost())
    for path, data in ((PCT + "/alloc", b"size=72 count=11 cgroup=/app/a tag=h"),
                       ("/sys/devices/system/cpu/cpu2/online", b"0"),     # hotplug: drift
                       (PCT + "/free", b"tag=h count=4")):
        of = OpenFile(path, os.O_WRONLY, Caller())
        t.write(of, data)
        t.release(of)
    return t


def test_reasons_by_cgroup_from_the_models_check_report():
    model = _tree().model
    rep = check.check(model)
    parsed = check.parse_report(rep.text()).findings
    kinds = {f.kind for f in parsed}
    assert {"memoryless", "offline-cpus", "drift"} <= kinds, kinds
    by_cg = top.kinds_by_cgroup(parsed)
    assert "/odd: name" in by_cg and set(by_cg) <= {c.path for c in
                                                    [model.root, *model.root.descendants()]}


def _figures(model, nids):
    """What the model says a cgroup's row holds: per-node percpu of nodes with memory (the
    ones memory.numa_stat lists) and the memcg-wide total."""
    out = {}
    for cg in [model.root, *model.root.descendants()]:
        m = cg.memcg
        if m is not None:
            out[cg.path] = ({n: m.node_stat(n) for n in nids if model.topo.has_memory(n)},
                            m.stat("percpu"))
    return out


def test_snapshot_holds_the_models_figures(mount_tree):
    t = _tree()
    mnt = mount_tree(t)
    snap = top.read_snapshot(mnt)
    model, topo = t.model, t.model.topo
    assert [n.nid for n in snap.nodes] == list(topo.node_ids)
    for n in snap.nodes:
        assert n.nr_percpu == model.kernel.nodestat.nr_percpu[n.nid]
        assert n.mem_total == topo.nodes[n.nid].memory // 1024
        assert n.mem_free == n.mem_total - model.kernel.nodestat.used_pages(n.nid) * 4
    want = _figures(model, topo.node_ids)
    got = {r.path: (r.nodes, r.total) for r in snap.cgroups}
    assert got == want
    diffs = {r.path: r.diff for r in snap.cgroups}
    assert diffs["/app"] == model.lookup("/app").memcg.node_stat(1) > 0   # the memoryless node
    by_cg = top.kinds_by_cgroup(check.check(model).findings)     # the mount's check file
    assert snap.check and all(r.kinds == by_cg.get(r.path, []) for r in snap.cgroups)
    assert "memoryless" in by_cg["/app"]


def test_reasons_come_from_the_check_file(tmp_path):
    """On a tree holding the check file (here `pseudofs render`'s plain files plus the
    model's report), each cgroup's REASON is the kinds the report names for it."""
    t = _tree()
    from pseudofs.cli import walk
    for path, data in walk(t):
        out = tmp_path / path.lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    rep = check.check(t.model)
    (tmp_path / check.CHECK_FILE.lstrip("/")).write_text(rep.text())
    snap = top.read_snapshot(str(tmp_path))
    assert snap.check
    screen = top.lines(snap, top.View(), str(tmp_path), 1)
    by_cg = top.kinds_by_cgroup(check.parse_report(rep.text()).findings)
    for r in snap.cgroups:
        assert r.kinds == by_cg.get(r.path, [])
        line = next(x for x in screen if x.startswith(r.path + "  "))
        assert line.split()[-1] == (",".join(r.kinds) or "-")
    assert any(r.kinds for r in snap.cgroups)


def test_cgroups_vanishing_while_top_reads(mount_tree):
    t = _tree()
    mnt = mount_tree(t)
    cg = mnt + "/sys/fs/cgroup/app"
    stop, errors = threading.Event(), []

    def churn():
        i = 0
        while not stop.is_set():                 # three live, one made, one removed, ...
            try:
                os.mkdir("%s/v%d" % (cg, i))
                if i >= 3:
                    os.rmdir("%s/v%d" % (cg, i - 3))
            except OSError as e:
                errors.append(e)
            i += 1
            time.sleep(0.002 * (i % 20))         # some live long enough to be read
    th = threading.Thread(target=churn)
    th.start()
    seen = set()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            snap = top.read_snapshot(mnt)
            seen |= {r.path for r in snap.cgroups}
            top.lines(snap, top.View(), mnt, 1)
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]
    assert any(p.startswith("/app/v") for p in seen), (seen, os.listdir(cg))


def _read_key(path, key):
    for line in open(path).read().splitlines():
        if line.split()[:1] == [key]:
            return line.split()[1:]
    return None


def test_top_under_tmux_shows_the_mount_and_q_quits(mount_tree, tmp_path):
    mnt = mount_tree(_tree())
    sock, rc = "pfs-top-%d" % os.getpid(), tmp_path / "rc"
    tmux = ["tmux", "-L", sock]
    # LINES and COLUMNS in the environment (the test runner's) would pin ncurses' size
    cmd = "env -u LINES -u COLUMNS PYTHONPATH=%s %s -m pseudofs top %s --interval 0.3; " \
          "echo $? > %s" % (REPO, sys.executable, mnt, rc)
    subprocess.run(tmux + ["new-session", "-d", "-s", "top", "-x", "150", "-y", "40", cmd],
                   check=True)
    try:
        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p", "-t", "top"],
                                  capture_output=True, text=True).stdout
        wait_until(lambda: "REASON" in screen() and "/odd: name" in screen(), timeout=20,
                   what="top's first screen")
        text = screen()
        lines = text.splitlines()
        # the nodes, with the values their files hold
        nodes = sorted(int(n[4:]) for n in os.listdir(mnt + top.NODE_DIR)
                       if re.fullmatch(r"node\d+", n))
        for nid in nodes:
            d = "%s%s/node%d/" % (mnt, top.NODE_DIR, nid)
            row = next(x for x in lines if x.startswith("node%d " % nid)).split()
            meminfo = open(d + "meminfo").read()
            total = re.search(r"MemTotal:\s+(\d+) kB", meminfo)[1]
            free = re.search(r"MemFree:\s+(\d+) kB", meminfo)[1]
            assert row[1:] == [open(d + "cpulist").read().strip() or "-",
                               _read_key(d + "vmstat", "nr_percpu")[0], total, free], row
        # every cgroup, with its files' values, largest memcg-wide percpu first
        header = next(x for x in lines if x.startswith("CGROUP")).split()
        rows = [x for x in lines if x.startswith("/")]
        cgroups = {"/"} | {"/" + os.path.relpath(d, mnt + top.CGROOT)
                           for d, _, _ in os.walk(mnt + top.CGROOT)} - {"/."}
        assert {r.rsplit("  ", 1)[0].split("  ")[0] for r in rows} == cgroups
        totals = []
        with open(mnt + check.CHECK_FILE) as f:          # every mount has the check file
            reasons = top.kinds_by_cgroup(check.parse_report(f.read()).findings)
        for r in rows:
            path = r.split("  ")[0]
            cells = r[len(path):].split()
            d = mnt + top.CGROOT + ("" if path == "/" else path)
            numa = {f.split("=")[0]: f.split("=")[1]
                    for f in _read_key(d + "/memory.numa_stat", "percpu")}
            total = _read_key(d + "/memory.stat", "percpu")[0]
            for col, cell in zip(header[1:], cells):
                if col.startswith("N"):
                    assert cell == numa.get(col, "-"), (path, col, cell)
            assert cells[len(nodes)] == total
            assert int(cells[len(nodes) + 1]) == int(total) - sum(map(int, numa.values()))
            assert cells[-1] == (",".join(reasons.get(path, [])) or "-")
            totals.append(int(total))
        assert totals == sorted(totals, reverse=True)
        subprocess.run(tmux + ["send-keys", "-t", "top", "s"], check=True)
        wait_until(lambda: "sort DIFF desc" in screen(), what="s to sort by DIFF")
        # a smaller terminal: redrawn to fit at once, not at the next interval's refresh
        subprocess.run(tmux + ["resize-window", "-t", "top", "-x", "60", "-y", "8"], check=True)
        wait_until(lambda: screen().splitlines()[0].startswith("pseudofs top") and
                   max(map(len, screen().splitlines())) < 60, what="the redraw at 60x8")
        subprocess.run(tmux + ["send-keys", "-t", "top", "q"], check=True)
        wait_until(lambda: rc.exists() and rc.read_text().strip(), what="top to exit")
        assert rc.read_text().strip() == "0"
        wait_until(lambda: subprocess.run(tmux + ["has-session", "-t", "top"],
                                          capture_output=True).returncode != 0,
                   what="the tmux session to end")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
