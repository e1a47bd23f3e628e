"""Directory listings in kernfs order (sysfs, cgroupfs): pseudofs.files.kernfs.py against
listings read off a 6.18 x86 VM, and the mount listing in that order."""

import os

from pseudofs.files import kernfs

# os.listdir() (readdir order, no . and ..) on a 6.18 VM, 2 CPUs, 1 node, cgroup2 root with no
# memory controller
REAL = {
    "/sys/devices/system/cpu": [
        "cpuidle", "uevent", "hotplug", "enabled", "possible", "offline", "present", "power",
        "online", "cpu1", "smt", "vulnerabilities", "cpufreq", "isolated", "kernel_max", "cpu0",
        "modalias"],
    "/sys/devices/system/cpu/cpu1": [
        "cpuidle", "uevent", "hotplug", "node0", "power", "online", "topology", "cpu_capacity",
        "cache", "subsystem"],
    "/sys/fs/cgroup (cgroup2 root)": [
        "io.pressure", "cgroup.procs", "cgroup.max.descendants", "cpu.stat", "memory.pressure",
        "cpu.pressure", "cgroup.stat", "cpu.stat.local", "cgroup.threads", "cgroup.controllers",
        "cgroup.subtree_control", "cgroup.max.depth", "cgroup.pressure"],
}


def test_order_is_the_kernels():
    for where, listing in REAL.items():
        assert kernfs.order(sorted(listing)) == listing, where


def test_hash_stays_in_its_range():
    for name in ("", "a", "memory.stat", "x" * 255, "\udcff"):
        assert 2 <= kernfs.name_hash(name) < 0x7FFFFFFF


def test_mount_lists_sysfs_and_cgroupfs_in_kernfs_order(mounted):
    mnt = mounted()
    for d in ("sys", "sys/devices/system/cpu", "sys/devices/system/cpu/cpu1",
              "sys/devices/system/node/node0", "sys/fs/cgroup", "sys/fs/cgroup/app"):
        listing = os.listdir(os.path.join(mnt, d))
        assert listing == kernfs.order(listing), d
    # what the model has of the real listings comes in the real relative order
    for d, real in (("sys/devices/system/cpu", REAL["/sys/devices/system/cpu"]),
                    ("sys/fs/cgroup", REAL["/sys/fs/cgroup (cgroup2 root)"])):
        ours = os.listdir(os.path.join(mnt, d))
        common = [n for n in real if n in ours]
        assert len(common) >= 6, d
        assert [n for n in ours if n in common] == common, d


def test_proc_lists_shorter_names_first_then_self_and_pids(mounted):
    """procfs: the entries by (length, name) (proc_match()), then self, then the pids, as
    /proc on a real system lists "stat vmstat cgroups cpuinfo meminfo ... self thread-self 1"."""
    mnt = mounted()
    listing = os.listdir(os.path.join(mnt, "proc"))
    fixed = [n for n in listing if not n.isdigit() and n != "self"]
    assert fixed == sorted(fixed, key=lambda n: (len(n), n)) == \
        ["sys", "stat", "vmstat", "cgroups", "cpuinfo", "meminfo", "version"]
    assert listing[len(fixed)] == "self"
