"""The model a mount serves: the kernel plus the cgroup tree operations, memcg control
knobs, CPU hotplug and process membership. Every method is one kernel operation: it either
succeeds or raises ModelError leaving the state as it was (but for the events it counts)."""

import errno
from typing import Optional

from pseudofs.errors import ModelError
from pseudofs.model.cgroup import CONTROLLERS, Cgroup, split_path
from pseudofs.model.cputime import CpuTime
from pseudofs.model.kernel import Kernel
from pseudofs.model.memcg_life import memcg_offline, memcg_online
from pseudofs.model.alloc_groups import AllocGroups
from pseudofs.model.procs import Host, Membership, NoHost
from pseudofs.model.topology import Node, Topology


class Model:
    STATE = ("generation",)
    FIXED = ("topo", "config", "kernel", "root", "members", "groups", "cputime")

    def __init__(self, config):
        k, t, p = config.kernel, config.topology, config.percpu
        nodes = [Node(n.id, n.cpus, n.hotplug_cpus, n.memory, n.distance) for n in t.nodes]
        self.topo = Topology(nodes, t.possible, t.online, k.nr_cpus)
        self.config = config
        self.kernel = Kernel(self.topo, k.accounting, k.page_size, p.static_size,
                             p.reserved_size, p.dyn_size, p.atom_size, p.first_chunk_free)
        self.root: Cgroup = self.kernel.root
        self.members = Membership()
        self.groups = AllocGroups(self)
        self.cputime = CpuTime(self.topo.possible, self.topo.online)
        self.generation = 0        # bumped by every change: renderers may cache on it

    @property
    def accounting(self) -> str:
        return self.kernel.accounting

    @property
    def page_size(self) -> int:
        return self.kernel.page_size

    def changed(self) -> None:
        self.kernel.end_of_command()
        self.generation += 1

    def reap(self, host) -> bool:
        """A process that exited left its cgroup then (cgroup_exit() in do_exit): forget the
        exited members the model still holds. True if any left (the model changed)."""
        if not self.members.reap(host):
            return False
        self.generation += 1
        return True

    # --- lookup -------------------------------------------------------------------------------
    def lookup(self, path: str) -> Cgroup:
        cg = self.root
        for part in split_path(path):
            cg = cg.children.get(part)
            if cg is None:
                raise ModelError(errno.ENOENT, f"no cgroup {path}")
        return cg

    # --- mkdir / rmdir ------------------------------------------------------------------------
    def mkdir(self, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> Cgroup:
        parts = split_path(path)
        if not parts:
            raise ModelError(errno.EEXIST, "the root exists")
        parent = self.lookup("/".join(parts[:-1]))
        name = parts[-1]
        if "\n" in name:
            raise ModelError(errno.EINVAL, "cgroup name contains a newline")
        if name in parent.children:
            raise ModelError(errno.EEXIST, f"{path} exists")
        # cgroup_check_hierarchy_limits(): every ancestor's max.descendants and max.depth
        depth = 1
        for a in parent.ancestors():
            if a.nr_descendants() >= a.max_descendants or depth > a.max_depth:
                raise ModelError(errno.EAGAIN, "cgroup.max.descendants or max.depth reached")
            depth += 1
        cg = Cgroup(name, parent, uid, gid, mode)
        if parent.frozen():
            pass                                # a child of a frozen cgroup is frozen (e_freeze)
        if "memory" in parent.subtree_control:
            with self.kernel.transaction([parent.nearest_memcg()]):
                memcg_online(self.kernel, cg)
        parent.link_child(cg)
        self.changed()
        return cg

    def rmdir(self, path: str) -> None:
        cg = self.lookup(path)
        if cg.is_root():
            raise ModelError(errno.EBUSY, "the root cgroup cannot be removed")
        if cg.children or cg.populated():
            raise ModelError(errno.EBUSY, f"{path} has children or processes")
        if cg.memcg is not None:
            memcg_offline(self.kernel, cg)
        cg.removed = True
        cg.parent.unlink_child(cg)
        self.changed()

    # --- cgroup core files -------------------------------------------------------------------
    def subtree_control(self, cg: Cgroup, enable: set, disable: set) -> None:
        """cgroup_subtree_control_write() after parsing (names already checked)."""
        if cg.removed:
            raise ModelError(errno.ENODEV, "cgroup removed")
        for name in enable:
            if name not in cg.controllers():
                raise ModelError(errno.ENOENT, f"{name} is not in cgroup.controllers")
        for name in disable:
            for child in cg.children.values():
                if name in child.subtree_control:
                    raise ModelError(errno.EBUSY, f"{child.path} still enables {name}")
        new_on = {n for n in enable if n not in cg.subtree_control}
        if new_on and not cg.is_root() and cg.procs:
            raise ModelError(errno.EBUSY, "no internal processes: cgroup has processes")
        if "memory" in new_on:
            created = []
            try:
                with self.kernel.transaction([cg.nearest_memcg()]):
                    for child in cg.children.values():
                        memcg_online(self.kernel, child)
                        created.append(child)
            except ModelError:
                for child in created:
                    child.memcg = None
                    child.memcg_count(-1)
                raise
        if "memory" in disable and "memory" in cg.subtree_control:
            for child in cg.children.values():
                memcg_offline(self.kernel, child)
        cg.subtree_control = (cg.subtree_control | enable) - disable
        self.changed()

    def attach(self, cg: Cgroup, pid: int, host: Host) -> None:
        """cgroup_procs_write() after parsing: `pid` is a thread group id that exists."""
        if cg.removed:
            raise ModelError(errno.ENODEV, "cgroup removed")
        if not cg.is_root() and cg.subtree_control:
            raise ModelError(errno.EBUSY, "no internal processes: controllers are enabled")
        self.members.join(pid, cg, host)
        self.changed()

    def procs_write(self, cg: Cgroup, pid: int, writer_pid: int, host: Host,
                    threadgroup: bool = True, permission=None) -> None:
        """__cgroup_procs_write() after parsing: 0 is the writer. cgroup.procs moves the whole
        process; cgroup.threads (threadgroup=False) one thread, which
        cgroup_attach_permissions() allows only within its domain: the model has no threaded
        subtrees, so a thread may only be "moved" to the cgroup it is in (a no-op).
        `permission(src, dst)`, if given, is cgroup_procs_write_permission(): it raises EACCES."""
        tgid = host.tgid(writer_pid if pid == 0 else pid)
        if tgid is None:
            raise ModelError(errno.ESRCH, f"no such process {pid}")
        if host.is_kernel_thread(tgid):
            raise ModelError(errno.EINVAL, "kernel threads cannot be moved")
        self.reap(host)                # membership may change, even if this write is refused
        if permission is not None:
            permission(self.cgroup_of(tgid, host), cg)
        if not threadgroup:
            if cg.removed:
                raise ModelError(errno.ENODEV, "cgroup removed")
            # cgroup_migrate_vet_dst() before the same-domain check
            if not cg.is_root() and cg.subtree_control:
                raise ModelError(errno.EBUSY, "no internal processes: controllers are enabled")
            if self.cgroup_of(tgid, host) is not cg:
                raise ModelError(errno.EOPNOTSUPP, "a thread can only move within its domain")
            return
        self.attach(cg, tgid, host)

    def cgroup_of(self, pid: int, host: Optional[Host] = None) -> Cgroup:
        return self.members.cgroup_of(pid, host or NoHost(), self.root)

    def kill(self, cg: Cgroup) -> None:
        """cgroup.kill on the model: the processes leave it (no real signal is sent)."""
        for c in [cg, *cg.descendants()]:
            for pid in list(c.procs):
                self.members.forget(pid)
        self.changed()

    def set_freeze(self, cg: Cgroup, value: int) -> None:
        cg.freeze = value
        self.changed()

    def set_max_descendants(self, cg: Cgroup, value: int) -> None:
        cg.max_descendants = value
        self.changed()

    def set_max_depth(self, cg: Cgroup, value: int) -> None:
        cg.max_depth = value
        self.changed()

    # --- memcg knobs -----------------------------------------------------------------------------
    def memcg_of(self, cg: Cgroup):
        if cg.memcg is None:
            raise ModelError(errno.ENOENT, f"{cg.path} has no memory controller")
        return cg.memcg

    def set_memory_max(self, cg: Cgroup, pages: int) -> None:
        """memory_max_write(): set, drain the stocks once, reclaim (nothing percpu is
        reclaimable), then one OOM event; no task is killed in the model."""
        memcg = self.memcg_of(cg)
        memcg.memory.max = pages
        if memcg.memory.usage > pages:
            self.kernel.stocks.drain_all_stock(memcg)
            if memcg.memory.usage > pages:
                memcg.memory_event("oom")
        self.changed()

    def set_memory_high(self, cg: Cgroup, pages: int) -> None:
        """memory_high_write(): set, drain once, reclaim; counts no event."""
        memcg = self.memcg_of(cg)
        memcg.memory.high = pages
        if memcg.memory.usage > pages:
            self.kernel.stocks.drain_all_stock(memcg)
        self.changed()

    def _set_limit(self, cg: Cgroup, field: str, pages: int) -> None:
        setattr(self.memcg_of(cg).memory, field, pages)
        self.changed()

    # memory.low/min, swap.max/high, zswap.max: stored, nothing else happens in the model
    def set_memory_min(self, cg: Cgroup, pages: int) -> None:
        self._set_limit(cg, "min", pages)

    def set_memory_low(self, cg: Cgroup, pages: int) -> None:
        self._set_limit(cg, "low", pages)

    def set_swap_high(self, cg: Cgroup, pages: int) -> None:
        self._set_limit(cg, "swap_high", pages)

    def set_swap_max(self, cg: Cgroup, pages: int) -> None:
        self._set_limit(cg, "swap_max", pages)

    def set_zswap_max(self, cg: Cgroup, pages: int) -> None:
        self._set_limit(cg, "zswap_max", pages)

    def set_oom_group(self, cg: Cgroup, value: int) -> None:
        self.memcg_of(cg).oom_group = value
        self.changed()

    def set_zswap_writeback(self, cg: Cgroup, value: int) -> None:
        self.memcg_of(cg).zswap_writeback = value
        self.changed()

    def reclaim(self, cg: Cgroup, nr_bytes: int) -> None:
        """memory_reclaim() / user_proactive_reclaim(): percpu memory cannot be reclaimed, so
        any nonzero request fails with EAGAIN after MAX_RECLAIM_RETRIES + 1 attempts."""
        if nr_bytes // self.page_size > 0:
            raise ModelError(errno.EAGAIN, "could not reclaim the requested amount")

    def peak_read(self, cg: Cgroup, key) -> int:
        """memory_peak_show(): the watermark, or for a file written to, max(its value, the
        local watermark), in pages."""
        c = self.memcg_of(cg).memory
        memcg = self.memcg_of(cg)
        if key in memcg.peak_fds:
            return max(memcg.peak_fds[key], c.local_watermark)
        return c.watermark

    def peak_reset(self, cg: Cgroup, key) -> None:
        """memory_peak_write(): resets the local watermark and this file's value."""
        memcg = self.memcg_of(cg)
        usage = memcg.memory.usage
        memcg.memory.local_watermark = usage
        for k in memcg.peak_fds:
            memcg.peak_fds[k] = max(memcg.peak_fds[k], usage)
        memcg.peak_fds[key] = usage
        self.generation += 1

    def peak_release(self, cg: Cgroup, key) -> None:
        if cg.memcg is not None:
            cg.memcg.peak_fds.pop(key, None)

    # --- percpu_test control files ------------------------------------------------------------
    def alloc(self, req, writer_cgroup) -> None:
        """An alloc command (control.AllocRequest); `writer_cgroup()` gives the writer's cgroup,
        asked only when the command names none."""
        cg = self.lookup(req.cgroup) if req.cgroup is not None else writer_cgroup()
        self.groups.alloc(req.size, req.count, req.align, cg, req.tag, req.account)

    def free(self, req) -> None:
        """A free command (control.FreeRequest)."""
        if req.all:
            self.groups.free_all()
        elif req.tag is not None:
            self.groups.free_tag(req.tag, req.count)
        else:
            self.groups.free_cgroup(req.cgroup)

    # --- CPU hotplug ---------------------------------------------------------------------------
    def stock_cpu(self) -> int:
        return min(self.topo.online)

    def set_cpu_online(self, cpu: int, online: bool, now: float = 0.0) -> None:
        """`now`: seconds since boot, when the CPU's idle time starts or stops counting."""
        was_stock = cpu == self.stock_cpu()
        if self.topo.set_online(cpu, online):
            self.cputime.set_online(cpu, online, now)
            if was_stock and not online:
                self.kernel.stocks.drain_all()       # memcg_hotplug_cpu_dead()
        self.changed()


__all__ = ["Model", "CONTROLLERS"]
