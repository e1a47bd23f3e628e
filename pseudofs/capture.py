"""`pseudofs capture`: a configuration of the machine it runs on (or of another tree, --root).

Read from procfs and sysfs: the nodes (CPUs, memory, distances), present/possible/online CPUs,
kernel_max, the nearest profile to the running kernel's release, the kernel.config options the
host's /proc/vmstat and /proc/meminfo show (an option counts only where the nearest profile's
tables have a line that tells it: the keys the option adds), PSI from /proc/pressure, the
percpu first chunk's geometry from debugfs percpu_stats when readable, and with --cgroups the
cgroup v2 tree (paths, memory in subtree_control, the limits a config can set).
"""

import os
import re

import yaml

from pseudofs.files.cgroup import CONFIG_FILES
from pseudofs.model.topology import MAX_NR_CPUS
from pseudofs.kparse import format_cpulist, parse_cpulist
from pseudofs.render.kconfig import OPTIONS, nearest_version
from pseudofs.render.meminfo import meminfo_labels
from pseudofs.render.profile import make_profile
from pseudofs.render.vmstat_text import proc_vmstat_names

NODE_DIR = "sys/devices/system/node"
CPU_DIR = "sys/devices/system/cpu"
#: values a cgroup file has when nobody wrote it: not worth writing into a configuration
_UNSET = {"max", "0", ""}
_UNSET_BY_FILE = {"memory.zswap.writeback": {"1"}}


def _read(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _cpus(root, rel):
    text = _read(root, rel)
    return parse_cpulist(text.strip(), MAX_NR_CPUS) if text and text.strip() else frozenset()


def _keys(text, sep):
    return {line.split(sep)[0].strip() for line in (text or "").splitlines() if line.strip()}


def topology(root):
    """(topology mapping, kernel.nr_cpus) of the tree."""
    present, possible = _cpus(root, CPU_DIR + "/present"), _cpus(root, CPU_DIR + "/possible")
    online = _cpus(root, CPU_DIR + "/online")
    ids = sorted(int(m.group(1)) for m in (re.match(r"node(\d+)$", n) for n in
                 os.listdir(os.path.join(root, NODE_DIR))) if m)
    nodes, placed = [], set()
    for nid in ids:
        base = f"{NODE_DIR}/node{nid}/"
        cpus = _cpus(root, base + "cpulist") & present
        meminfo = _read(root, base + "meminfo") or ""
        m = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        memory = int(m.group(1)) * 1024 if m else 0
        distance = [int(d) for d in (_read(root, base + "distance") or "").split()]
        node = {"id": nid, "cpus": format_cpulist(cpus), "memory": memory}
        if distance and len(distance) == len(ids):
            node["distance"] = distance
        nodes.append(node)
        placed |= cpus
    # present CPUs no node lists (offline ones: x86 drops them from the node mask) go to the
    # node their cpuN/nodeM link names, else to the first node
    for cpu in sorted(present - placed):
        links = [n for n in os.listdir(os.path.join(root, CPU_DIR, f"cpu{cpu}"))
                 if re.match(r"node\d+$", n)] if os.path.isdir(
                     os.path.join(root, CPU_DIR, f"cpu{cpu}")) else []
        nid = int(links[0][4:]) if links else ids[0]
        node = next(n for n in nodes if n["id"] == nid)
        node["cpus"] = format_cpulist(parse_cpulist(node["cpus"] or "", MAX_NR_CPUS) | {cpu}) \
            if node["cpus"] else str(cpu)
    topo = {"nodes": nodes}
    if possible != present:
        topo["possible_cpus"] = format_cpulist(possible)
    if online != present:
        topo["online_cpus"] = format_cpulist(online)
    kernel_max = _read(root, CPU_DIR + "/kernel_max")
    nr_cpus = int(kernel_max) + 1 if kernel_max and kernel_max.strip().isdigit() else None
    return topo, nr_cpus


def kernel(root):
    """kernel.version (the nearest profile) and kernel.config as the host shows them."""
    release = (_read(root, "proc/sys/kernel/osrelease") or "").strip()
    version = nearest_version(release) if release else "7.0"
    vmstat = _keys(_read(root, "proc/vmstat"), " ")
    meminfo = _keys(_read(root, "proc/meminfo"), ":")
    options = {}
    for name in OPTIONS:
        if name in ("swapaccount", "memory_hugetlb_accounting", "PSI"):
            continue
        on, off = make_profile(version, {name: True}), make_profile(version, {name: False})
        tells = (set(proc_vmstat_names(on, False)) - set(proc_vmstat_names(off, False)),
                 set(meminfo_labels(on)) - set(meminfo_labels(off)))
        if tells[0] or tells[1]:
            options[name] = bool(tells[0] & vmstat or tells[1] & meminfo)
    if os.path.isdir(os.path.join(root, "proc/pressure")):
        options["PSI"] = _read(root, "proc/pressure/memory") is not None
    mounts = _read(root, "proc/mounts") or ""
    cgroup2 = [line.split() for line in mounts.splitlines() if line.split()[2:3] == ["cgroup2"]]
    if cgroup2:                       # the option of the cgroup2 mount, not of any mount
        options["memory_hugetlb_accounting"] = any(
            "memory_hugetlb_accounting" in f[3].split(",") for f in cgroup2 if len(f) > 3)
    swapaccount = _swapaccount(root)
    if swapaccount is not None and version in ("5.10", "5.15") and options.get("SWAP", True):
        options["swapaccount"] = swapaccount
    return version, options


def _swapaccount(root):
    """Whether a non-root memory cgroup has memory.swap.max (None: no such cgroup to tell)."""
    top = _cgroup2_root(root)
    if top is None:
        return None
    for entry in sorted(os.listdir(top)):
        child = os.path.join(top, entry)
        if os.path.isfile(os.path.join(child, "memory.current")):
            return os.path.exists(os.path.join(child, "memory.swap.max"))
    return None


def percpu(root):
    """The first chunk's geometry from debugfs percpu_stats (pcpu_stats_show), if readable."""
    text = _read(root, "sys/kernel/debug/percpu_stats")
    if not text:
        return None
    fields = dict(re.findall(r"^\s+(\w+)\s+:\s+(\d+)", text, re.M))
    keys = ("static_size", "reserved_size", "dyn_size", "atom_size")
    if not all(k in fields for k in keys):
        return None
    return {k: int(fields[k]) for k in keys}


def _cgroup2_root(root):
    """Where cgroup2 is mounted in the tree: /sys/fs/cgroup, or the host's cgroup2 mount."""
    base = os.path.join(root, "sys/fs/cgroup")
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return base
    for line in (_read(root, "proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            path = os.path.join(root, parts[1].lstrip("/"))
            if os.path.exists(os.path.join(path, "cgroup.controllers")):
                return path
    return None


def _controllers(text):
    return [c for c in (text or "").split() if c == "memory"]


def cgroups(root):
    """(root_subtree_control, [cgroup mappings]) of the cgroup v2 tree, parents first."""
    top = _cgroup2_root(root)
    if top is None:
        return None, []
    out = []
    root_ctl = _controllers(_read(top, "cgroup.subtree_control"))
    enabled = {"/": root_ctl}
    for dirpath, dirnames, _ in os.walk(top):
        dirnames.sort()
        rel = "/" + os.path.relpath(dirpath, top).replace(os.sep, "/")
        if rel == "/.":
            continue
        parent = rel.rsplit("/", 1)[0] or "/"
        if parent not in enabled:          # a parent we could not describe
            dirnames[:] = []
            continue
        cg = {"path": rel}
        ctl = [c for c in _controllers(_read(dirpath, "cgroup.subtree_control"))
               if c in enabled[parent]]
        if ctl:
            cg["subtree_control"] = ctl
        for name in CONFIG_FILES:
            if name.startswith("memory.") and "memory" not in enabled[parent]:
                continue
            value = _read(dirpath, name)
            if value is None:
                continue
            value = value.strip()
            if value in _UNSET or value in _UNSET_BY_FILE.get(name, ()):
                continue
            cg[name] = value
        enabled[rel] = ctl
        out.append(cg)
    return root_ctl, out


def capture(root="/", with_cgroups=False) -> dict:
    """The configuration mapping of the tree at `root`."""
    topo, nr_cpus = topology(root)
    version, options = kernel(root)
    k = {"accounting": "per-node", "page_size": os.sysconf("SC_PAGE_SIZE") if root == "/"
         else 4096, "version": version}
    if nr_cpus:
        k["nr_cpus"] = nr_cpus
    if options:
        k["config"] = options
    config = {"kernel": k, "topology": topo}
    pc = percpu(root)
    if pc:
        config["percpu"] = pc
    if with_cgroups:
        root_ctl, cgs = cgroups(root)
        if root_ctl is not None:
            config["root_subtree_control"] = root_ctl
            if cgs:
                config["cgroups"] = cgs
    return config


def dump(config) -> str:
    """YAML text of a captured configuration (quoted version: 6.10 must not read as 6.1)."""
    return "# pseudofs capture\n" + yaml.safe_dump(config, sort_keys=False,
                                                  default_flow_style=None)
