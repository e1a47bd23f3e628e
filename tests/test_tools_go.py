"""Go parsers as Debian packages them, built offline once per test session (GOPATH mode from
/usr/share/gocode, GO111MODULE=off, GOPROXY=off: no module download), reading the mount:

- runc's libcontainer/cgroups/fs2 (golang-github-opencontainers-runc-dev): memory.stat,
  memory.current, memory.max, and /proc/meminfo for the root cgroup;
- containerd's cgroups/v2 (golang-github-containerd-cgroups-dev);
- prometheus procfs and sysfs (golang-github-prometheus-procfs-dev): meminfo, stat, cpuinfo,
  cgroups, node vmstat.

The probe (tests/tools/go/probe/main.go) prints what each library returns as JSON.
"""

import json
import os
import shutil

import pytest

from tools.toolkit import (CONFIG, NODE_CPUS_AFTER, ONLINE_AFTER, POSSIBLE, WEB_COUNT, WEB_SIZE,
                           kv, meminfo, missing, nodes, percpu_per_node, pseudofs_exec, read, run,
                           scenario)

GOCODE = "/usr/share/gocode/src"
LIBRARIES = {"github.com/opencontainers/runc/libcontainer/cgroups/fs2":
             "golang-github-opencontainers-runc-dev",
             "github.com/containerd/cgroups/v2": "golang-github-containerd-cgroups-dev",
             "github.com/prometheus/procfs/sysfs": "golang-github-prometheus-procfs-dev"}
SOURCE = os.path.join(os.path.dirname(__file__), "tools", "go", "probe")
MAX = 2**64 - 1         # what the libraries make of "max"


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """The probe binary, built once per session into a temp dir (its GOCACHE there too)."""
    go = shutil.which("go")
    if go is None:
        missing("go", "golang-go")
    for path, package in LIBRARIES.items():
        if not os.path.isdir(os.path.join(GOCODE, path)):
            missing(os.path.join(GOCODE, path), package)
    out = tmp_path_factory.mktemp("go-probe")
    env = dict(os.environ, GO111MODULE="off", GOPATH=os.path.dirname(GOCODE), GOPROXY="off",
               GOFLAGS="", GOENV="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOCACHE=str(tmp_path_factory.getbasetemp() / "gocache"), HOME=str(out))
    binary = str(out / "probe")
    r = run([go, "build", "-o", binary, "."], cwd=SOURCE, env=env, check=False)
    assert r.returncode == 0, "go build failed:\n" + r.stderr
    return binary


def web_percpu(mode: str) -> int:
    if mode == "per-node":
        return sum(percpu_per_node(WEB_SIZE, WEB_COUNT, NODE_CPUS_AFTER, POSSIBLE).values())
    return WEB_COUNT * (WEB_SIZE * POSSIBLE + 2 * WEB_SIZE)      # pcpu_obj_full_size


def limit(text: str) -> int:
    return MAX if text.strip() == "max" else int(text)


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_runc_fs2_with_its_test_switch(mounted, probe, mode):
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    for group in ("app", "app/web"):
        cg = f"sys/fs/cgroup/{group}"
        got = json.loads(run([probe, "runc", f"{mnt}/{cg}", "testmode"]).stdout)
        assert got["stats"] == kv(read(mnt, f"{cg}/memory.stat"))
        assert got["usage"] == int(read(mnt, f"{cg}/memory.current")) > 0
        assert got["limit"] == limit(read(mnt, f"{cg}/memory.max"))
    assert got["stats"]["percpu"] == web_percpu(mode)
    assert got["limit"] == MAX
    app = json.loads(run([probe, "runc", f"{mnt}/sys/fs/cgroup/app", "testmode"]).stdout)
    assert app["limit"] == 64 << 20
    # FUSE's statfs magic: without cgroups.TestMode runc refuses files outside /sys/fs/cgroup
    r = run([probe, "runc", f"{mnt}/sys/fs/cgroup/app"], check=False)
    assert r.returncode != 0 and "not a cgroup file" in r.stderr


def test_runc_fs2_through_exec(mounted, probe):
    """At /sys/fs/cgroup runc opens files with openat2 below its root handle, whose magic
    exec's supervisor answers; for the root cgroup (no memory.current) it falls back to
    /proc/meminfo."""
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    web = json.loads(pseudofs_exec(mnt, probe, "runc", "/sys/fs/cgroup/app/web").stdout)
    assert web["stats"]["percpu"] == web_percpu("per-node")
    assert web["usage"] == int(read(mnt, "sys/fs/cgroup/app/web/memory.current"))
    root = json.loads(pseudofs_exec(mnt, probe, "runc", "/sys/fs/cgroup").stdout)
    mi = meminfo(read(mnt, "proc/meminfo"))
    assert root["usage"] == (mi["MemTotal"] - mi["MemFree"]) * 1024 > 0
    assert root["limit"] == MAX
    assert root["stats"] == kv(read(mnt, "sys/fs/cgroup/memory.stat"))
    assert root["unified_mode"] is True         # exec's supervisor answers statfs: cgroup2


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_containerd_cgroups_v2(mounted, probe, mode):
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    root = f"{mnt}/sys/fs/cgroup"
    for group, max_ in (("/app", 64 << 20), ("/app/web", MAX)):
        got = json.loads(run([probe, "containerd", root, group]).stdout)
        assert got["controllers"] == read(root, group[1:] + "/cgroup.controllers").split()
        assert got["controllers"] == ["memory"]
        assert got["usage"] == int(read(root, group[1:] + "/memory.current")) > 0
        assert got["usage_limit"] == max_
        assert got["events_max"] == kv(read(root, group[1:] + "/memory.events"))["max"]


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_prometheus_procfs_and_sysfs(mounted, probe, mode):
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    got = json.loads(run([probe, "procfs", f"{mnt}/proc", f"{mnt}/sys"]).stdout)
    mi = meminfo(read(mnt, "proc/meminfo"))
    assert (got["mem_total"], got["mem_free"], got["mem_available"], got["swap_total"]) == (
        mi["MemTotal"], mi["MemFree"], mi["MemAvailable"], mi["SwapTotal"])
    assert got["node_free_pages"] == {
        str(n): kv(read(mnt, f"sys/devices/system/node/node{n}/vmstat"))["nr_free_pages"]
        for n in nodes(mnt)}
    assert got["processors"] == ONLINE_AFTER
    assert got["stat_cpus"] == max(ONLINE_AFTER) + 1     # procfs 0.8 indexes cpuN lines by N
    n_cgroups = sum(1 for _ in os.walk(f"{mnt}/sys/fs/cgroup"))
    assert got["cgroups"] == {"memory": n_cgroups}
    assert got["sysfs_cpus"] == 8                        # cpuN directories: present CPUs
