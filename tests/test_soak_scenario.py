"""Soak: a live `pseudofs mount` daemon driven by `pseudofs play` for PSEUDOFS_SOAK_SECONDS
(default 600) of container churn, limit hits and CPU hotplug, while node_exporter (loopback
only) is scraped every second and a reader walks every cgroup's memory.stat and memory.numa_stat.

Checked: the daemon's RSS after the first minute (a third of a shorter run) grows by at most 10%
by the end (medians of ten seconds, sampled every 2 s; the peak is printed);
no scrape, collector or read fails (a cgroup the scenario removed between listing and reading it
is not a failure); the daemon logs no error or traceback; play sees no refusal but the expected
ENOMEM and EBUSY; and at the end, the scenario stopped with its state kept, the tree's invariants
hold. The kernel clamps a negative counter to 0 when it shows it (memcg_page_state(),
lruvec_page_state(), node_page_state(), global_node_page_state() on SMP), and CPU hotplug makes
per-node values drift negative (docs/scenarios.md), so a sum equals its total exactly when no
part shows 0, and is at least the total otherwise.
"""

import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from daemon_util import REPO
from pseudofs.kparse import parse_cpulist
from test_tools_node_exporter import COLLECTORS, VMSTAT_FIELDS, exporter, metrics
from tools.toolkit import free_port, kv

SECONDS = int(os.environ.get("PSEUDOFS_SOAK_SECONDS", "600"))
WARM = min(60, SECONDS // 3)

CONFIG = """\
kernel: {clock: live}
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "4-5", hotplug_cpus: "6-7", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}
"""
SCENARIO = """\
seed: 11
parent: /soak
containers:
  - name: web
    arrival: 0.5
    max_alive: 12
    lifetime: {min: 10, max: 40}
    limits: {memory.max: 64M}
    allocations: {rate: 2, size: [8, 16, 64, 256], count: {min: 10, max: 200}, frees: 1}
  - name: tight
    arrival: 0.1
    max_alive: 2
    lifetime: {min: 20, max: 40}
    limits: {memory.max: 2M}
    allocations: {rate: 2, size: [256, 1K], count: {min: 20, max: 100}, frees: 0.2}
events:
  - {every: 30, start: 10, cpu: offline, for: 15}
  - {every: 20, start: 5, burst: {container: tight, size: 1K, count: 50, tries: 100}}
  - {every: 45, start: 25, set: {container: web, memory.high: 32M}}
"""
CG = "/sys/fs/cgroup"


def numa(text):
    """memory.numa_stat: {key: {node: value}}."""
    out = {}
    for line in text.splitlines():
        key, *nodes = line.split()
        out[key] = {int(n.split("=")[0][1:]): int(n.split("=")[1]) for n in nodes}
    return out


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


class Loop(threading.Thread):
    """Calls `step` until stopped; counts the steps, keeps the failures."""

    def __init__(self, name, step, pause):
        super().__init__(name=name, daemon=True)
        self.step, self.pause = step, pause
        self.done, self.failures = 0, []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.step()
                self.done += 1
            except Exception as e:              # every failure is reported by the test
                self.failures.append("%s: %r" % (self.name, e))
            self.halt.wait(self.pause)


def walk_once(mnt, seen):
    for dirpath, dirs, files in os.walk(mnt + CG):
        if "memory.stat" not in files:
            continue
        for name in ("memory.stat", "memory.numa_stat"):
            try:
                with open(os.path.join(dirpath, name)) as f:
                    text = f.read()
            except OSError:
                if os.path.isdir(dirpath):      # still there: a real failure
                    raise
                seen["vanished"] += 1
                continue
            (kv if name == "memory.stat" else numa)(text)     # parses, or raises
            seen["reads"] += 1


def check_sum(where, parts, total, exact, cpu_nodes):
    """Σ shown parts vs the shown total under the kernel's clamping (module doc): equal, unless
    a node with CPUs shows 0 (perhaps a negative drift clamped); then the total is at most the
    sum. `parts` maps node -> value."""
    s = sum(parts.values())
    if s == total:
        exact.append(where)
        return
    assert any(v == 0 for n, v in parts.items() if n in cpu_nodes), (where, parts, total)
    assert total <= s, (where, parts, total)


def invariants(mnt):
    exact, checked = [], 0
    has_mem = parse_cpulist(open(mnt + "/sys/devices/system/node/has_memory").read().strip())
    cpu_nodes = parse_cpulist(open(mnt + "/sys/devices/system/node/has_cpu").read().strip())
    for dirpath, _dirs, files in os.walk(mnt + CG):
        if "memory.numa_stat" not in files:
            continue
        stat = kv(open(dirpath + "/memory.stat").read())
        for key, nodes in numa(open(dirpath + "/memory.numa_stat").read()).items():
            assert set(nodes) <= has_mem or not nodes
            if key not in stat:             # hugetlb: in numa_stat only (as in the kernel)
                continue
            check_sum("%s %s" % (dirpath[len(mnt):], key), nodes, stat[key], exact, cpu_nodes)
            checked += 1
    nodes = sorted(int(d[4:]) for d in os.listdir(mnt + "/sys/devices/system/node")
                   if re.fullmatch(r"node\d+", d))
    vm = kv(open(mnt + "/proc/vmstat").read())
    per = [kv(open(mnt + "/sys/devices/system/node/node%d/vmstat" % n).read()) for n in nodes]
    for key in ("nr_percpu", "nr_free_pages"):
        check_sum("vmstat " + key, {n: p[key] for n, p in zip(nodes, per)}, vm[key], exact,
                  cpu_nodes)
        checked += 1
    mi = {line.split(":")[0]: int(line.split()[1])
          for line in open(mnt + "/proc/meminfo").read().splitlines()}
    for key in ("MemTotal", "MemFree"):
        parts = [int(re.search(r"%s:\s+(\d+)" % key, open(
            mnt + "/sys/devices/system/node/node%d/meminfo" % n).read()).group(1))
            for n in nodes]
        assert sum(parts) == mi[key], (key, parts, mi[key])
        checked += 1
    return checked, len(exact)


@pytest.mark.soak
def test_soak_scenario_with_node_exporter_and_readers(daemons, tmp_path):
    binary = exporter()
    cfg, sc = tmp_path / "c.yaml", tmp_path / "soak.yaml"
    cfg.write_text(CONFIG)
    sc.write_text(SCENARIO)
    mnt = str(tmp_path / "mnt")
    _, pid = daemons.mount(mnt, "-c", cfg)
    log = daemons.logs[-1]

    port = free_port()
    exp_log = open(tmp_path / "node_exporter.log", "w")
    exp = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={mnt}/proc",
         f"--path.sysfs={mnt}/sys", f"--path.rootfs={mnt}", "--collector.disable-defaults",
         *(f"--collector.{c}" for c in COLLECTORS), f"--collector.vmstat.fields={VMSTAT_FIELDS}"],
        stdout=exp_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never a proxy
    deadline = time.monotonic() + 20
    while True:
        try:
            opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            break
        except OSError:
            assert exp.poll() is None and time.monotonic() < deadline, "node_exporter is down"
            time.sleep(0.1)

    def scrape():
        with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            m = metrics(r.read().decode())
        bad = [c for c in COLLECTORS
               if m.get(f'node_scrape_collector_success{{collector="{c}"}}') != 1]
        assert not bad, "collectors failed: %s" % bad
        assert m["node_boot_time_seconds"] > 0 and "node_vmstat_nr_percpu" in m
    seen = {"reads": 0, "vanished": 0}
    rss = []
    loops = [Loop("scraper", scrape, 1.0), Loop("reader", lambda: walk_once(mnt, seen), 0.2),
             Loop("rss", lambda: rss.append((time.monotonic(), rss_kb(pid))), 2.0)]
    start = time.monotonic()
    for lp in loops:
        lp.start()
    run = tmp_path / "run.jsonl"
    try:
        play = subprocess.run(
            [sys.executable, "-m", "pseudofs", "play", mnt, str(sc), "--duration", str(SECONDS),
             "--keep", "--record", str(run)], capture_output=True, text=True,
            timeout=SECONDS * 2 + 120, env=dict(os.environ, PYTHONPATH=REPO))
    finally:
        for lp in loops:
            lp.halt.set()
        for lp in loops:
            lp.join(30)
        exp.terminate()
        exp.wait(10)
        exp_log.close()
    assert play.returncode == 0, play.stdout + play.stderr
    for lp in loops:
        assert not lp.failures, lp.failures[:5]
    ne_log = (tmp_path / "node_exporter.log").read_text()
    assert "level=error" not in ne_log, ne_log[-2000:]
    text = open(log).read()
    assert not re.search(r"ERROR|Traceback|exception", text), text[-3000:]

    lines = run.read_text().splitlines()
    assert len(lines) == SECONDS
    # RSS after the first minute against RSS at the end (medians of ten seconds each, so one
    # burst's transient arenas do not count as growth; the peak is printed beside them)
    end = rss[-1][0]
    base = statistics.median(kb for t, kb in rss if WARM <= t - start <= WARM + 10)
    last = statistics.median(kb for t, kb in rss if t >= end - 10)
    peak = max(kb for t, kb in rss if t - start >= WARM)
    checked, exact = invariants(mnt)
    print("soak %d s: play %s | %d scrapes, %d cgroup reads (%d vanished), RSS %d kB at %d s, "
          "%d kB at the end (%+.1f%%), peak %d kB, %d invariants (%d exact)" % (
              SECONDS, play.stdout.strip(), loops[0].done, seen["reads"], seen["vanished"],
              base, WARM, last, (last / base - 1) * 100, peak, checked, exact))
    print("RSS kB by minute: " + " ".join(
        "%d:%d" % (round(t - start), kb) for t, kb in rss[::30]))
    assert loops[0].done >= SECONDS * 0.8, "node_exporter was scraped %d times" % loops[0].done
    assert last <= base * 1.10, (base, last, peak)
