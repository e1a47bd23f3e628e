"""/proc/cgroups (kernel/cgroup/cgroup-v1.c, proc_cgroupstats_show) and
/proc/PID/cgroup (kernel/cgroup/cgroup.c, proc_cgroup_show)."""

PROC_CGROUPS_HEADER = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"

#: The legacy (v1) controller names the 6.18 sample VM lists, in subsystem-id
#: order ("blkio" is io's legacy name).
SAMPLE_6_18_SUBSYS = ("cpuset", "cpu", "cpuacct", "blkio", "memory", "devices",
                      "freezer", "net_cls", "perf_event", "net_prio", "hugetlb",
                      "pids")


def proc_cgroups(rows) -> bytes:
    """Header, then "%s\\t%d\\t%d\\t%d\\n" per (legacy name, hierarchy id,
    num_cgroups, enabled) row, in subsystem-id order as given."""
    return (PROC_CGROUPS_HEADER + "".join(
        "%s\t%d\t%d\t%d\n" % (name, hier, num, int(bool(en)))
        for name, hier, num, en in rows)).encode()


def v2_rows(names, nr_cgroups, enabled=True):
    """Rows for controllers bound to the v2 hierarchy: hierarchy id 0 and
    num_cgroups = every cgroup of the v2 hierarchy (root included)."""
    return [(name, 0, nr_cgroups, enabled) for name in names]


def pid_cgroup(path, deleted=False) -> bytes:
    """The v2 line of /proc/PID/cgroup: "0::<path>\\n", " (deleted)" appended
    for a removed cgroup. `path` is relative to the cgroup namespace root
    ("/" for the root)."""
    # a name made by mkdir of non-UTF-8 bytes holds them as surrogates (fs/fuseops.py)
    return ("0::%s%s\n" % (path, " (deleted)" if deleted else "")).encode("utf-8",
                                                                          "surrogateescape")
