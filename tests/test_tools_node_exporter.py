"""Prometheus node_exporter (Debian: prometheus-node-exporter) pointed at the mount with
--path.procfs/--path.sysfs/--path.rootfs, listening on 127.0.0.1 only, scraped once."""

import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from tools.toolkit import (CONFIG, ONLINE_AFTER, free_port, kv, meminfo, missing, node_meminfo,
                           nodes, read, scenario)

COLLECTORS = ["vmstat", "meminfo", "meminfo_numa", "cpu", "stat"]
# The default field list plus nr_percpu.
VMSTAT_FIELDS = "^(nr_percpu|oom_kill|pgpg|pswp|pg.*fault).*"


def exporter():
    """Debian names the binary prometheus-node-exporter; upstream builds name it node_exporter."""
    for name in ("prometheus-node-exporter", "node_exporter"):
        if shutil.which(name):
            return shutil.which(name)
    missing("node_exporter", "prometheus-node-exporter")


def scrape_once(binary, mnt, log_path):
    """Start the exporter on a free loopback port, scrape /metrics once, stop it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never a proxy
    for attempt in range(3):
        port = free_port()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{port}",
                 f"--path.procfs={mnt}/proc", f"--path.sysfs={mnt}/sys", f"--path.rootfs={mnt}",
                 "--collector.disable-defaults", *(f"--collector.{c}" for c in COLLECTORS),
                 f"--collector.vmstat.fields={VMSTAT_FIELDS}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                        return r.read().decode()
                except OSError:
                    time.sleep(0.1)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if "address already in use" not in open(log_path).read():
            break
    pytest.fail("node_exporter did not answer:\n" + open(log_path).read(), pytrace=False)


def metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_node_exporter_exports_the_model(mounted, tmp_path, mode):
    binary = exporter()
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    m = metrics(scrape_once(binary, mnt, tmp_path / "node_exporter.log"))
    log = (tmp_path / "node_exporter.log").read_text()
    assert "level=error" not in log, log
    for c in COLLECTORS:
        assert m[f'node_scrape_collector_success{{collector="{c}"}}'] == 1, c

    vm = kv(read(mnt, "proc/vmstat"))
    if mode == "per-node":
        assert m["node_vmstat_nr_percpu"] == vm["nr_percpu"] > 0
    else:
        assert "node_vmstat_nr_percpu" not in m
    assert m["node_vmstat_pgfault"] == vm["pgfault"]

    glob = meminfo(read(mnt, "proc/meminfo"))
    assert m["node_memory_Percpu_bytes"] == glob["Percpu"] * 1024 > 0
    assert m["node_memory_MemTotal_bytes"] == glob["MemTotal"] * 1024
    assert m["node_memory_MemFree_bytes"] == glob["MemFree"] * 1024

    seen = 0
    for n in nodes(mnt):
        for key, value in node_meminfo(mnt, n).items():
            name = "node_memory_numa_" + re.sub(r"\((\w+)\)", r"_\1", key)
            scale = 1 if key.startswith("HugePages_") else 1024
            assert m[f'{name}{{node="{n}"}}'] == value * scale, (n, key)
            seen += 1
        for key, value in kv(read(mnt, f"sys/devices/system/node/node{n}/numastat")).items():
            assert m[f'node_memory_numa_{key}_total{{node="{n}"}}'] == value, (n, key)
    assert seen == 4 * len(node_meminfo(mnt, 0))
    assert m['node_memory_numa_MemUsed{node="0"}'] > 0

    cpus = sorted({int(k.split('cpu="')[1].split('"')[0]) for k in m
                   if k.startswith("node_cpu_seconds_total{")})
    # procfs 0.8 (node_exporter 1.5) keeps /proc/stat's cpuN lines in a slice indexed by N, so
    # the offline CPU 5 and the absent 6-7 show up as zeros up to the highest online CPU.
    assert cpus == list(range(max(ONLINE_AFTER) + 1))
