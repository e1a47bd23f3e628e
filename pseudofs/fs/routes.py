"""The route table: every path of the mount, resolved against the model on every call.

Each row maps a path pattern to a resolver that returns a `Dir` or a `File` (or None: no such
path). getattr, readdir, open, read and write all go through `resolve`."""

import errno
import functools
import re
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional

from pseudofs import control
from pseudofs.errors import ModelError
from pseudofs.fs import kernfs, perms
from pseudofs.fs.cgroup_files import CGROUP_FILES, MEMBERSHIP_FILES, files_of, has_file
from pseudofs.fs.tree import Attr, Caller, OpenFile
from pseudofs.render import debugfs, procfs, sysfs

SYSFS_SIZE = 4096          # sysfs attributes report a page; procfs, cgroupfs, debugfs 0
CGROOT = "/sys/fs/cgroup"


@dataclass
class Dir:
    children: Callable[[], List[str]]
    mode: int = 0o555
    uid: int = 0
    gid: int = 0
    cgroup: object = None          # for cgroup directories: mkdir/rmdir/chown act on it
    cache: bool = True             # the same for every caller (not /proc, /proc/self, /proc/PID)


@dataclass
class File:
    mode: int
    read: Optional[Callable[[OpenFile], bytes]] = None
    write: Optional[Callable[[OpenFile, bytes], None]] = None
    size: int = 0
    uid: int = 0
    gid: int = 0
    owner_key: Optional[tuple] = None     # (cgroup, name) for chown of a cgroup file
    cache: bool = True                    # same model state, same bytes (not per fd/caller)
    members: bool = False                 # shows which processes are where: reap first


def _mutating(method):
    """A call that may change the model, even when it fails (a refused charge counts events):
    cached resolutions and renders are dropped afterwards."""
    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *args)
        finally:
            self._epoch += 1
    return wrapper


def _ro(fn, size=0):
    return lambda m: File(0o444, lambda of: fn(m), size=size)


def _static_dir(*names, mode=0o755):
    """A fixed directory; sysfs directories are 0755, /sys and /proc themselves 0555."""
    return lambda m: Dir(lambda: list(names), mode)


class Routes:
    """The Tree of pseudofs/fs/tree.py over a Model."""

    def __init__(self, model, host):
        self.model = model
        self.host = host
        self.lock = threading.Lock()
        self.live = model.config.kernel.clock == "live"     # time moves (docs/time.md)
        self.table = [
            (r"/", _static_dir("proc", "sys", mode=0o555)),
            (r"/proc", lambda m: Dir(self._proc_children, cache=False)),
            (r"/proc/vmstat", _ro(procfs.vmstat)),
            (r"/proc/meminfo", _ro(procfs.meminfo)),
            # btime: the host's, which the real /proc/PID/stat start times count from; on a
            # live clock the CPU times move, so neither file may be cached (docs/time.md)
            (r"/proc/stat", lambda m: File(0o444, lambda of: procfs.stat(
                m, self.host.btime(), self._now()), cache=not self.live)),
            (r"/proc/uptime", lambda m: File(0o444, lambda of: procfs.uptime(m, self._now()),
                                             cache=False) if self.live else None),
            (r"/proc/cpuinfo", _ro(procfs.cpuinfo)),
            (r"/proc/cgroups", _ro(procfs.cgroups)),
            (r"/proc/(?P<pid>self|\d+)", self._pid_dir),
            (r"/proc/(?P<pid>self|\d+)/cgroup", self._pid_cgroup),
            (r"/sys", _static_dir("devices", "fs", "kernel", mode=0o555)),
            (r"/sys/devices", _static_dir("system")),
            (r"/sys/devices/system", _static_dir("cpu", "node")),
            (r"/sys/devices/system/cpu", lambda m: Dir(self._cpu_children, 0o755)),
            (r"/sys/devices/system/cpu/(?P<w>possible|present|online|offline)",
             lambda m, w: File(0o444, lambda of: sysfs.cpu_mask(m, w), size=SYSFS_SIZE)),
            (r"/sys/devices/system/cpu/kernel_max", _ro(sysfs.kernel_max, SYSFS_SIZE)),
            (r"/sys/devices/system/cpu/cpu(?P<cpu>\d+)", self._cpu_dir),
            (r"/sys/devices/system/cpu/cpu(?P<cpu>\d+)/online", self._cpu_online),
            (r"/sys/devices/system/cpu/cpu(?P<cpu>\d+)/topology", self._topology_dir),
            (r"/sys/devices/system/cpu/cpu(?P<cpu>\d+)/topology/(?P<f>\w+)", self._topology_file),
            (r"/sys/devices/system/node", lambda m: Dir(self._node_children, 0o755)),
            (r"/sys/devices/system/node/(?P<w>possible|online|has_cpu|has_memory|"
             r"has_normal_memory)",
             lambda m, w: File(0o444, lambda of: sysfs.node_mask(m, w), size=SYSFS_SIZE)),
            (r"/sys/devices/system/node/node(?P<nid>\d+)", self._node_dir),
            (r"/sys/devices/system/node/node(?P<nid>\d+)/(?P<f>cpulist|cpumap|distance|"
             r"meminfo|numastat|vmstat)", self._node_file),
            (r"/sys/fs", _static_dir("cgroup")),
            (r"/sys/kernel", _static_dir("debug")),
            (r"/sys/kernel/debug", lambda m: Dir(lambda: ["percpu_stats", "percpu_test"], 0o700)),
            (r"/sys/kernel/debug/percpu_stats", _ro(debugfs.percpu_stats)),
            (r"/sys/kernel/debug/percpu_test", lambda m: Dir(lambda: ["alloc", "free"], 0o700)),
            (r"/sys/kernel/debug/percpu_test/alloc", lambda m: File(
                0o600, lambda of: debugfs.alloc_listing(m),
                lambda of, data: control.alloc(m, data, lambda: self._writer_cgroup(of)))),
            (r"/sys/kernel/debug/percpu_test/free", lambda m: File(
                0o200, None, lambda of, data: control.free(m, data))),
            (CGROOT + r"(?P<path>(?:/[^/]+)*)", self._cgroup_path),
        ]
        self.compiled = [(re.compile(p + r"\Z"), fn) for p, fn in self.table]
        self._nodes: dict = {}
        self._attrs: dict = {}
        self._renders: dict = {}
        self._epoch = 0
        self._key = None

    # --- resolution --------------------------------------------------------------------------
    def _fresh(self) -> None:
        """Resolutions and renders are kept while the model and the tree stay as they were:
        any change (model.generation) or mutating call (self._epoch) drops them."""
        key = (self.model.generation, self._epoch)
        if key != self._key:
            self._nodes.clear()
            self._attrs.clear()
            self._renders.clear()
            self._key = key

    def resolve(self, path: str, caller: Caller = Caller()):
        self._caller = caller
        self._fresh()
        node = self._nodes.get(path)
        if node is not None:
            return node
        for rx, fn in self.compiled:
            mt = rx.match(path)
            if mt:
                node = fn(self.model, **mt.groupdict())
                if node is None:
                    break
                if node.cache:
                    self._nodes[path] = node
                return node
        raise ModelError(errno.ENOENT, path)

    def _now(self) -> float:
        """Seconds since boot: asked of the host on a live clock (so the state log records
        it), 0 on a frozen one, where every time counter stays 0."""
        return self.host.clock() if self.live else 0.0

    def reap(self) -> None:
        """Model.reap() before anything that shows membership or depends on it: an exited
        process neither shows in cgroup.procs or /proc nor keeps a cgroup populated."""
        if self.model.reap(self.host):
            self._fresh()                # what was resolved or rendered before is stale

    def _proc_children(self) -> List[str]:
        self.reap()
        pids = sorted(self.model.members.members)
        me = ["self"] if self.host.tgid(self._caller.pid) is not None else []
        # procfs lists its entries in their rbtree's order, shorter names first (proc_match()
        # in fs/proc/generic.c), then "self" and the pids (proc_pid_readdir())
        names = ["stat", "uptime", "vmstat", "cgroups", "cpuinfo", "meminfo"]
        if not self.live:
            names.remove("uptime")          # a frozen clock has no time to show
        return names + me + [str(p) for p in pids]

    def _pid_of(self, pid: str) -> Optional[int]:
        if pid == "self":
            return self.host.tgid(self._caller.pid)
        self.reap()
        return int(pid) if int(pid) in self.model.members.members else None

    def _pid_dir(self, m, pid):
        return Dir(lambda: ["cgroup"], cache=False) if self._pid_of(pid) is not None else None

    def _pid_cgroup(self, m, pid):
        p = self._pid_of(pid)
        if p is None:
            return None
        return File(0o444, lambda of: procfs.pid_cgroup(m.cgroup_of(p, self.host)), cache=False)

    def _cpu_children(self) -> List[str]:
        t = self.model.topo
        return ["kernel_max", "offline", "online", "possible", "present"] + \
            [f"cpu{c}" for c in sorted(t.present)]

    def _cpu_dir(self, m, cpu):
        cpu = int(cpu)
        if cpu not in m.topo.present:
            return None
        # x86: the boot CPU has no online file; topology/ exists while the CPU is online
        return Dir(lambda: ([] if cpu == 0 else ["online"]) +
                   (["topology"] if cpu in m.topo.online else []), 0o755)

    def _cpu_online(self, m, cpu):
        cpu = int(cpu)
        if cpu not in m.topo.present or cpu == 0:
            return None
        return File(0o644, lambda of: sysfs.cpu_online(m, cpu),
                    lambda of, data: control.cpu_online(m, cpu, data, self._now),
                    size=SYSFS_SIZE)

    def _topology_dir(self, m, cpu):
        cpu = int(cpu)
        if cpu not in m.topo.online:
            return None
        return Dir(lambda: list(sysfs.TOPOLOGY_FILES), 0o755)

    def _topology_file(self, m, cpu, f):
        cpu = int(cpu)
        if cpu not in m.topo.online or f not in sysfs.TOPOLOGY_FILES:
            return None
        return File(0o444, lambda of: sysfs.cpu_topology(m, cpu, f),
                    size=sysfs.topology_size(m, f))

    def _node_children(self) -> List[str]:
        return ["has_cpu", "has_memory", "has_normal_memory", "online", "possible"] + \
            [f"node{n}" for n in self.model.topo.node_ids]

    def _node_dir(self, m, nid):
        if int(nid) not in m.topo.nodes:
            return None
        return Dir(lambda: ["cpulist", "cpumap", "distance", "meminfo", "numastat", "vmstat"],
                   0o755)

    def _node_file(self, m, nid, f):
        nid = int(nid)
        if nid not in m.topo.nodes:
            return None
        fn = getattr(sysfs, {"cpulist": "node_cpulist", "cpumap": "node_cpumap",
                             "distance": "node_distance", "meminfo": "node_meminfo",
                             "numastat": "node_numastat", "vmstat": "node_vmstat"}[f])
        return File(0o444, lambda of: fn(m, nid), size=SYSFS_SIZE)

    def _cgroup_path(self, m, path):
        parts = [p for p in path.split("/") if p]
        cg = m.root
        for i, part in enumerate(parts):
            child = cg.children.get(part)
            if child is None:
                if i == len(parts) - 1 and has_file(cg, part):
                    return self._cgroup_file(cg, part)
                return None
            cg = child
        return Dir(lambda: files_of(cg) + sorted(cg.children), cg.mode, cg.uid, cg.gid, cg)

    def _cgroup_file(self, cg, name):
        spec = CGROUP_FILES[name]
        m = self.model
        uid, gid, mode = perms.cgroup_file_attr(cg, name, spec.mode)
        read = (lambda of: spec.read(m, cg, of)) if spec.read else None
        write = (lambda of, data: spec.write(self, cg, data, of)) if spec.write else None
        return File(mode, read, write, 0, uid, gid, (cg, name), cache=name != "memory.peak",
                    members=name in MEMBERSHIP_FILES)

    def _writer_cgroup(self, of: OpenFile):
        pid = of.current.pid
        return self.model.cgroup_of(self.host.tgid(pid) or pid, self.host)

    # --- the Tree interface ------------------------------------------------------------------------
    def getattr(self, path: str, caller: Caller) -> Attr:
        node = self.resolve(path, caller)
        a = self._attrs.get(path)
        if a is None:
            if isinstance(node, Dir):
                a = Attr(True, node.mode, node.uid, node.gid, 0, 2)
            else:
                a = Attr(False, node.mode, node.uid, node.gid, node.size, 1)
            if node.cache:
                self._attrs[path] = a
        return a

    def readdir(self, path: str, caller: Caller) -> List[str]:
        node = self.resolve(path, caller)
        if not isinstance(node, Dir):
            raise ModelError(errno.ENOTDIR, path)
        if path.startswith("/sys") and not path.startswith("/sys/kernel/debug"):
            return kernfs.order(node.children())     # sysfs and cgroupfs are kernfs
        return node.children()

    def open(self, path: str, flags: int, caller: Caller) -> OpenFile:
        node = self.resolve(path, caller)
        if isinstance(node, Dir):
            raise ModelError(errno.EISDIR, path)
        acc = flags & 3
        # kernfs_fop_open(): no write handler for a write open, no read handler for a read
        if (acc != 0 and node.write is None) or (acc != 1 and node.read is None):
            raise ModelError(errno.EACCES, path)
        return OpenFile(path, flags, caller)

    def _node_for_io(self, of: OpenFile) -> File:
        try:
            node = self.resolve(of.path, of.caller)
        except ModelError:
            raise ModelError(errno.ENODEV, of.path) from None   # removed while open
        if isinstance(node, Dir):
            raise ModelError(errno.EISDIR, of.path)
        return node

    def read(self, of: OpenFile) -> bytes:
        node = self._node_for_io(of)
        if node.read is None:
            raise ModelError(errno.EINVAL, of.path)
        if node.members:
            self.reap()
        if not node.cache:
            return node.read(of)
        data = self._renders.get(of.path)
        if data is None:
            data = self._renders[of.path] = node.read(of)
        return data

    @_mutating
    def write(self, of: OpenFile, data: bytes) -> None:
        node = self._node_for_io(of)
        if node.write is None:
            raise ModelError(errno.EINVAL, of.path)
        node.write(of, data)

    def release(self, of: OpenFile) -> None:
        cg = of.private.get("peak_cgroup")
        if cg is not None:
            self.model.peak_release(cg, id(of))

    def truncate(self, path: str, caller: Caller) -> None:
        node = self.resolve(path, caller)
        if isinstance(node, Dir):
            raise ModelError(errno.EISDIR, path)
        if node.write is None:
            raise ModelError(errno.EACCES, path)

    @_mutating
    def mkdir(self, path: str, mode: int, caller: Caller) -> None:
        if not path.startswith(CGROOT + "/"):
            raise ModelError(errno.EPERM, path)
        parent = self.resolve(path.rsplit("/", 1)[0], caller)
        if not isinstance(parent, Dir) or parent.cgroup is None:
            raise ModelError(errno.ENOENT, path)
        name = path.rsplit("/", 1)[1]
        if has_file(parent.cgroup, name):
            raise ModelError(errno.EEXIST, path)
        self.model.mkdir(path[len(CGROOT):], caller.uid, caller.gid, mode & 0o7777)

    @_mutating
    def rmdir(self, path: str, caller: Caller) -> None:
        node = self.resolve(path, caller)
        if not isinstance(node, Dir):
            raise ModelError(errno.ENOTDIR, path)
        if node.cgroup is None:
            raise ModelError(errno.EPERM, path)
        self.reap()                      # exited members do not keep it populated
        self.model.rmdir(path[len(CGROOT):] or "/")

    @_mutating
    def chown(self, path: str, uid: int, gid: int, caller: Caller) -> None:
        node = self.resolve(path, caller)
        if isinstance(node, Dir) and node.cgroup is not None:
            cg = node.cgroup
            # kernfs: the files keep the owner they were created with (the cgroup's creator);
            # chown of the directory alone does not hand them over (delegation chowns
            # cgroup.procs, cgroup.threads and cgroup.subtree_control one by one)
            for name in CGROUP_FILES:
                cg.file_owner.setdefault(name, (cg.uid, cg.gid))
            cg.uid = cg.uid if uid == -1 else uid
            cg.gid = cg.gid if gid == -1 else gid
        elif isinstance(node, File) and node.owner_key is not None:
            cg, name = node.owner_key
            ou, og = cg.file_owner.get(name, (cg.uid, cg.gid))
            cg.file_owner[name] = (ou if uid == -1 else uid, og if gid == -1 else gid)
        else:
            raise ModelError(errno.EPERM, path)
        self.model.changed()

    @_mutating
    def chmod(self, path: str, mode: int, caller: Caller) -> None:
        node = self.resolve(path, caller)
        if isinstance(node, Dir) and node.cgroup is not None:
            node.cgroup.mode = mode & 0o7777
        elif isinstance(node, File) and node.owner_key is not None:
            cg, name = node.owner_key
            cg.file_mode[name] = mode & 0o7777
        else:
            raise ModelError(errno.EPERM, path)
        self.model.changed()
