"""The file table: every file and directory of the mount, as rows (pseudofs/files/rows.py).

getattr, readdir (in the kernel's order), open, read and write (fs/routes.py), the validation of
a configuration's `cgroups:` keys (config_check.py), boot (boot.py) and `pseudofs exec`'s bind
list (`exec_binds()`) are all derived from TABLE. Adding a kernel file is one row here plus
one renderer; a writable one adds a parser (control.py) and a model method. See
docs/ARCHITECTURE.md, "How to add a file".
"""

from typing import List, Tuple

from pseudofs import check, control, psi_trigger
from pseudofs.files import cgroup
from pseudofs.files.rows import PAGE, PROCFS, TABLE, Param, Row, Write
from pseudofs.render import debugfs, procfs, sysfs


def _digits(seg: str, prefix: str):
    rest = seg[len(prefix):]
    if seg.startswith(prefix) and rest.isdigit() and (rest == "0" or rest[0] != "0"):
        return int(rest)
    return None


# --- parameters --------------------------------------------------------------------------------
def _numbered(prefix, ids, attr):
    """A "cpuN"/"nodeN" segment: N among ids(model), bound as ctx.<attr>."""
    def match(x, seg):
        n = _digits(seg, prefix)
        if n is None or n not in ids(x.model):
            return False
        setattr(x, attr, n)
        return True
    return match


def _match_pid(x, seg):
    """/proc/self (the caller's process) or /proc/PID of a live process."""
    env = x.env
    if seg == "self":
        pid = env.host.tgid(env.caller.pid)
    else:
        pid = _digits(seg, "")
        env.reap()
        # a live process the model was not told about (one a member started, or any other)
        # is found too, as the kernel finds every pid: `pseudofs exec` reads its cgroup here
        if pid not in x.model.members.members and (pid is None or env.host.tgid(pid) != pid):
            pid = None
    if pid is None:
        return False
    x.pid = pid
    return True


def _pid_names(x):
    env = x.env
    env.reap()
    me = ["self"] if env.host.tgid(env.caller.pid) is not None else []
    return me + [str(p) for p in sorted(x.model.members.members)]


def _match_cgroup(x, seg):
    child = x.cg.children.get(seg)
    if child is None:
        return False
    x.cg = child
    return True


def _enter_cgroupfs(x):
    x.cg = x.model.root


def _match_topology(x, seg):
    if seg not in sysfs.TOPOLOGY_FILES:
        return False
    x.name = seg
    return True


PARAMS = {
    "cpu": Param("cpu", _numbered("cpu", lambda m: m.topo.present, "cpu"),
                 lambda x: ["cpu%d" % c for c in sorted(x.model.topo.present)]),
    "node": Param("node", _numbered("node", lambda m: m.topo.nodes, "nid"),
                  lambda x: ["node%d" % n for n in x.model.topo.node_ids]),
    "pid": Param("pid", _match_pid, _pid_names, caller=True),
    "cgroup": Param("cgroup", _match_cgroup, lambda x: list(x.cg.children), recursive=True),
    "topology": Param("topology", _match_topology, lambda x: list(sysfs.TOPOLOGY_FILES)),
}


# --- rows ----------------------------------------------------------------------------------------
def _ro(path, fn, size=0, **kw):
    """A read-only file rendered by fn(model)."""
    return Row(path, 0o444, read=lambda x, of: fn(x.model), size=size, **kw)


def _dir(path, mode=0o755, **kw):
    return Row(path, mode, is_dir=True, **kw)


_SYS = "/sys/devices/system"
_CPU = _SYS + "/cpu"
_NODE = _SYS + "/node"
#: Our control files (README, Control files), relative to the mount root: the one home of the path
PERCPU_TEST = "sys/kernel/debug/percpu_test"
_PCT = "/" + PERCPU_TEST

PROC = (
    _dir("/proc", 0o555, order=PROCFS, caller=True),
    _ro("/proc/vmstat", procfs.vmstat, bind=True),
    _ro("/proc/meminfo", procfs.meminfo, bind=True),
    # btime: the host's, which the real /proc/PID/stat start times count from; on a live clock
    # the CPU times move (docs/time.md), so the bytes are never kept
    Row("/proc/stat", 0o444, cache=False, bind=True,
        read=lambda x, of: procfs.stat(x.model, x.host.btime(), x.env.now())),
    # only where time moves: a frozen mount has no time to show, and exec leaves the host's
    Row("/proc/uptime", 0o444, cache=False, bind=True, exists=lambda x: x.env.live,
        read=lambda x, of: procfs.uptime(x.model, x.env.now())),
    _ro("/proc/cpuinfo", procfs.cpuinfo, bind=True),
    _ro("/proc/cgroups", procfs.cgroups, bind=True),
    _ro("/proc/version", procfs.version, bind=True),
    _dir("/proc/sys", 0o555, order=PROCFS),
    _dir("/proc/sys/kernel", 0o555, order=PROCFS),
    _ro("/proc/sys/kernel/osrelease", procfs.osrelease, bind=True),
    # CONFIG_PSI (psi_proc_init): the system-wide pressure files, all averages zero
    _dir("/proc/pressure", 0o555, order=PROCFS, exists=lambda x: procfs.has_psi(x.model),
         bind=True),
    *(Row("/proc/pressure/" + res, 0o444,
          owner=lambda x: (0, 0, procfs.pressure_mode(x.model)),
          read=lambda x, of, res=res: procfs.pressure(x.model, res),
          write=Write(control.raw, lambda x, data, io, res=res: psi_trigger.write(
              data, procfs.pressure_has_full(x.model, res), io.of.private)))
      for res in ("io", "cpu", "memory")),
    _dir("/proc/{pid}", 0o555, order=PROCFS, caller=True),
    Row("/proc/{pid}/cgroup", 0o444, caller=True,
        read=lambda x, of: procfs.pid_cgroup(x.model.cgroup_of(x.pid, x.host))),
)

SYSFS = (
    _dir("/sys", 0o555),
    _dir("/sys/devices"),
    _dir(_SYS),
    _dir(_CPU, bind=True),
    *(_ro(f"{_CPU}/{w}", lambda m, w=w: sysfs.cpu_mask(m, w), PAGE)
      for w in ("possible", "present", "online", "offline")),
    _ro(_CPU + "/kernel_max", sysfs.kernel_max, PAGE),
    _dir(_CPU + "/{cpu}"),
    # x86: the boot CPU has no online file (no hotplug)
    Row(_CPU + "/{cpu}/online", 0o644, size=PAGE, exists=lambda x: x.cpu != 0,
        read=lambda x, of: sysfs.cpu_online(x.model, x.cpu),
        write=Write(control.cpu_online,
                    lambda x, v, io: x.model.set_cpu_online(x.cpu, v, x.env.now()))),
    # topology/ exists while the CPU is online (cpuhp state CPUHP_TOPOLOGY_PREPARE)
    _dir(_CPU + "/{cpu}/topology", exists=lambda x: x.cpu in x.model.topo.online),
    Row(_CPU + "/{cpu}/topology/{topology}", 0o444,
        read=lambda x, of: sysfs.cpu_topology(x.model, x.cpu, x.name),
        size=lambda x: sysfs.topology_size(x.model, x.name)),
    _dir(_NODE, bind=True),
    *(_ro(f"{_NODE}/{w}", lambda m, w=w: sysfs.node_mask(m, w), PAGE)
      for w in ("possible", "online", "has_cpu", "has_memory", "has_normal_memory")),
    _dir(_NODE + "/{node}"),
    *(Row(f"{_NODE}/{{node}}/{name}", 0o444, size=PAGE,
          read=lambda x, of, fn=fn: fn(x.model, x.nid))
      for name, fn in (("cpulist", sysfs.node_cpulist), ("cpumap", sysfs.node_cpumap),
                       ("distance", sysfs.node_distance), ("meminfo", sysfs.node_meminfo),
                       ("numastat", sysfs.node_numastat), ("vmstat", sysfs.node_vmstat))),
)

CGROUPFS = (
    _dir("/sys/fs"),
    # cgroup directories: mkdir/rmdir/chown/chmod act on their cgroup (fs/routes.py)
    Row("/sys/fs/cgroup", 0o755, is_dir=True, bind=True, enter=_enter_cgroupfs,
        owner=lambda x: (x.cg.uid, x.cg.gid, x.cg.mode)),
    *cgroup.ROWS,
)

DEBUGFS = (
    _dir("/sys/kernel"),
    _dir("/sys/kernel/debug", 0o700, order=TABLE),
    _ro("/sys/kernel/debug/percpu_stats", debugfs.percpu_stats),
    _dir(_PCT, 0o700, order=TABLE),
    Row(_PCT + "/alloc", 0o600, read=lambda x, of: debugfs.alloc_listing(x.model),
        write=Write(control.alloc, lambda x, v, io: x.model.alloc(v, io.writer_cgroup))),
    Row(_PCT + "/free", 0o200, write=Write(control.free, lambda x, v, io: x.model.free(v))),
    # `pseudofs check` of the live model (pseudofs.testing's Mount.check() reads it)
    Row(_PCT + "/check", 0o400, read=lambda x, of: check.check(x.model).text().encode()),
    # the fault plan of the mount (not of the model) and its log (docs/faults.md): a write
    # replaces the plan; not cached, the hits move with every read
    Row(_PCT + "/faults", 0o600, cache=False, read=lambda x, of: x.env.faults.show(),
        write=Write(control.raw, lambda x, v, io: x.env.faults.write(v))),
    Row(_PCT + "/fault_log", 0o400, cache=False, read=lambda x, of: x.env.faults.log_text()),
)

TABLE_ROWS: Tuple[Row, ...] = (_dir("/", 0o555, order=TABLE),) + PROC + SYSFS + CGROUPFS + DEBUGFS


def exec_binds(rows=TABLE_ROWS) -> List[Tuple[str, bool, bool]]:
    """(path, is a directory, optional) of every row `pseudofs exec` binds over the host's same
    path; an optional one (it has an `exists` rule, e.g. /proc/pressure) may be absent."""
    return [(row.path, row.is_dir, row.exists is not None) for row in rows if row.bind]
