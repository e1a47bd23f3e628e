"""procfs files from the model: /proc/vmstat, /proc/meminfo, /proc/stat, /proc/uptime,
/proc/cpuinfo, /proc/cgroups, /proc/PID/cgroup. Pure: model state (and the time, for the files
that show it) in, bytes out."""

from pseudofs.model.cputime import to_ns
from pseudofs.render import cgroup_text, cpuinfo as _cpuinfo, proc_stat as _stat
from pseudofs.render.meminfo import meminfo as _meminfo, meminfo_labels
from pseudofs.render.kconfig import BANNERS, RELEASES
from pseudofs.render.profile import enabled, profile_of_kernel, profile_version
from pseudofs.render.psi import has_full, pressure as _pressure
from pseudofs.render.uptime import uptime as _uptime
from pseudofs.render.vmstat_text import proc_vmstat_names, vmstat as _vmstat

VMALLOC_TOTAL_KB = 34359738367        # x86-64 VMALLOC_TOTAL >> 10
HPAGE_KB = 2048


def per_node(model) -> bool:
    return model.accounting == "per-node"


def profile(model) -> frozenset:
    """The kernel profile (version and options) the model's configuration names."""
    return profile_of_kernel(model.config.kernel)


def vmstat_values(model, nid=None) -> dict:
    """Stored values (pages) for vmstat: the whole machine, or node `nid`."""
    ns = model.kernel.nodestat
    nids = model.topo.node_ids if nid is None else [nid]
    free = sum(ns.free_pages[n] for n in nids)
    values = {"nr_free_pages": free}
    if per_node(model):
        values["nr_percpu"] = sum(ns.nr_percpu[n] for n in nids)
    return values


def vmstat(model) -> bytes:
    return _vmstat(proc_vmstat_names(profile(model), per_node(model)), vmstat_values(model))


def meminfo_values(model, nids) -> dict:
    """kB values shared by /proc/meminfo and nodeN/meminfo."""
    ns = model.kernel.nodestat
    kb = model.page_size // 1024
    total = sum(ns.total_pages[n] for n in nids) * kb
    free = sum(ns.free_pages[n] for n in nids) * kb
    return {"MemTotal": total, "MemFree": free, "MemUsed": total - free}


def meminfo(model) -> bytes:
    v = meminfo_values(model, model.topo.node_ids)
    kb = model.page_size // 1024
    v.update({
        "MemAvailable": v["MemFree"],
        "CommitLimit": v["MemTotal"] // 2,         # overcommit_ratio 50, no swap
        "VmallocTotal": VMALLOC_TOTAL_KB,
        "Percpu": model.kernel.pcpu.pcpu_nr_pages() * kb,
        "Hugepagesize": HPAGE_KB,
        "DirectMap2M": v["MemTotal"],
    })
    return _meminfo([(label, v.get(label, 0)) for label in meminfo_labels(profile(model))])


def stat(model, btime: int = 0, now: float = 0.0) -> bytes:
    """`now`: seconds since boot; at 0 (a frozen clock) every time counter is 0."""
    ct = model.cputime
    return _stat.proc_stat(sorted(model.topo.online), cpu_times=ct.stat_lines(now),
                           cpu_total=ct.stat_total(now), btime=btime)


def uptime(model, now: float) -> bytes:
    return _uptime(to_ns(now), sum(model.cputime.idle_ns_all(now).values()))


def cpuinfo(model) -> bytes:
    topo = model.topo
    return _cpuinfo.cpuinfo(sorted(topo.online), {c: topo.node_of(c) for c in topo.present})


def cgroups(model) -> bytes:
    n = 1 + model.root.nr_descendants()
    return cgroup_text.proc_cgroups(cgroup_text.v2_rows(["memory"], n))


def pid_cgroup(cgroup) -> bytes:
    return cgroup_text.pid_cgroup(cgroup.path)


def release(model) -> str:
    return RELEASES[profile_version(profile(model))]


def version(model) -> bytes:
    """/proc/version (fs/proc/version.c): linux_proc_banner with utsname()'s sysname, release
    and version."""
    builder, compiler, uts_version = BANNERS[profile_version(profile(model))]
    return ("Linux version %s (%s) (%s) %s\n" % (release(model), builder, compiler,
                                                 uts_version)).encode()


def osrelease(model) -> bytes:
    """/proc/sys/kernel/osrelease (proc_do_uts_string): the release and a newline."""
    return (release(model) + "\n").encode()


def pressure(model, resource: str) -> bytes:
    """/proc/pressure/RESOURCE (psi_proc_show: the system group), all zero."""
    return _pressure(resource, profile(model))


def pressure_has_full(model, resource: str) -> bool:
    return has_full(resource, profile(model))


def has_psi(model) -> bool:
    return "PSI" in profile(model)


def pressure_mode(model) -> int:
    """psi_proc_init: 0666 from 5.13 ("psi: allow unprivileged users with CAP_SYS_RESOURCE to
    write psi files"), before mode 0, which proc_create() makes S_IRUGO."""
    return 0o666 if enabled(">=5.13", profile(model)) else 0o444
