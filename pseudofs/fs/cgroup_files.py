"""The files of a cgroup directory: one row per kernel file (cgroup_base_files[],
memory_files[], swap_files[], zswap_files[]) with its mode, whether the root has it, whether it
belongs to the memory controller, and its read and write handlers."""

import errno
from dataclasses import dataclass, replace
from typing import Callable, Optional

from pseudofs import control, psi_trigger
from pseudofs.errors import ModelError
from pseudofs.fs import perms
from pseudofs.render import cgroupfs as r
from pseudofs.render.memcg_files import GATED_NAMES, cgroup_file_exists, gated_cgroup_files
from pseudofs.render.procfs import profile as profile_of
from pseudofs.render.profile import DEFAULT_PROFILE
from pseudofs.render.psi import has_full, pressure


@dataclass(frozen=True)
class CgFile:
    mode: int
    on_root: bool
    memory: bool                                   # exists when the parent enabled memory
    read: Optional[Callable] = None                # (model, cg, of) -> bytes
    write: Optional[Callable] = None               # (tree, cg, data, of) -> None


def _m(fn):
    """A memcg-file reader: (model, cg, of) -> fn(model, memcg)."""
    return lambda model, cg, of: fn(model, cg.memcg)


def _limit_w(field, setter=None):
    def write(tree, cg, data, of):
        pages = control.limit_pages(tree.model, data)
        if setter:
            getattr(tree.model, setter)(cg, pages)
        else:
            tree.model.set_counter(cg, field, pages)
    return write


def _flag_w(field):
    return lambda tree, cg, data, of: tree.model.set_memcg_flag(
        cg, field, control.zero_or_one(data))


def _peak_r(model, cg, of):
    return b"%d\n" % (model.peak_read(cg, id(of)) * model.page_size)


def _peak_w(tree, cg, data, of):
    tree.model.peak_reset(cg, id(of))
    of.private["peak_cgroup"] = cg


def _may_migrate(of):
    """cgroup_procs_write_permission() with the opener's credentials (of->file->f_cred)."""
    return lambda src, dst: perms.procs_write_permission(of.caller, src, dst, RW)


def _procs_w(tree, cg, data, of):
    control.procs(tree.model, cg, data, of.current.pid, tree.host, permission=_may_migrate(of))


def _threads_w(tree, cg, data, of):
    control.procs(tree.model, cg, data, of.current.pid, tree.host, threadgroup=False,
                  permission=_may_migrate(of))


def _kill_w(tree, cg, data, of):
    control.kill(data)
    tree.model.kill(cg)


def _type_w(tree, cg, data, of):
    control.cgroup_type(data)


RW, RO, WO = 0o644, 0o444, 0o200


def _psi(resource):
    """(read, write) of a cgroup pressure file: zero averages, trigger writes checked."""
    def write(tree, cg, data, of):
        psi_trigger.write(data, has_full(resource, profile_of(tree.model)), of.private,
                          procfs=False)
    return (lambda m, cg, of: pressure(resource, profile_of(m))), write

# Files whose content shows where processes are: exited ones are reaped before they render.
MEMBERSHIP_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.events")


def _subtree_w(tree, cg, data, of):
    tree.reap()         # "no internal processes" must not count ones that exited
    control.subtree_control(tree.model, cg, data)

CGROUP_FILES = {
    # kernel/cgroup/cgroup.c cgroup_base_files[] (no PSI files: model choice)
    "cgroup.type": CgFile(RW, False, False, lambda m, cg, of: r.cgroup_type(m, cg), _type_w),
    "cgroup.procs": CgFile(RW, True, False, lambda m, cg, of: r.procs(m, cg), _procs_w),
    "cgroup.threads": CgFile(RW, True, False, lambda m, cg, of: r.procs(m, cg), _threads_w),
    "cgroup.controllers": CgFile(RO, True, False, lambda m, cg, of: r.controllers(m, cg)),
    "cgroup.subtree_control": CgFile(
        RW, True, False, lambda m, cg, of: r.subtree_control(m, cg), _subtree_w),
    "cgroup.events": CgFile(RO, False, False, lambda m, cg, of: r.events(m, cg)),
    "cgroup.max.descendants": CgFile(
        RW, True, False, lambda m, cg, of: r.max_value(cg.max_descendants),
        lambda t, cg, data, of: t.model.set_max_descendants(cg, control.max_count(data))),
    "cgroup.max.depth": CgFile(
        RW, True, False, lambda m, cg, of: r.max_value(cg.max_depth),
        lambda t, cg, data, of: t.model.set_max_depth(cg, control.max_count(data))),
    "cgroup.stat": CgFile(RO, True, False, lambda m, cg, of: r.cgroup_stat(m, cg)),
    "cgroup.stat.local": CgFile(RO, False, False, lambda m, cg, of: r.stat_local(m, cg)),
    "cgroup.freeze": CgFile(
        RW, False, False, lambda m, cg, of: b"%d\n" % cg.freeze,
        lambda t, cg, data, of: t.model.set_freeze(cg, control.freeze(data))),
    "cgroup.kill": CgFile(WO, False, False, None, _kill_w),
    "cpu.stat": CgFile(RO, True, False, lambda m, cg, of: r.cpu_stat(m, cg)),
    "cpu.stat.local": CgFile(RO, True, False, lambda m, cg, of: b""),
    # cgroup_psi_files[] (CONFIG_PSI; which exist: render/memcg_files.py)
    "io.pressure": CgFile(RW, True, False, *_psi("io")),
    "memory.pressure": CgFile(RW, True, False, *_psi("memory")),
    "cpu.pressure": CgFile(RW, True, False, *_psi("cpu")),
    # mm/memcontrol.c memory_files[]
    "memory.current": CgFile(RO, False, True, _m(r.current)),
    "memory.min": CgFile(RW, False, True, _m(lambda m, mc: r.counter_limit(m, mc, "min")),
                         _limit_w("min")),
    "memory.low": CgFile(RW, False, True, _m(lambda m, mc: r.counter_limit(m, mc, "low")),
                         _limit_w("low")),
    "memory.high": CgFile(RW, False, True, _m(lambda m, mc: r.counter_limit(m, mc, "high")),
                          _limit_w("high", "set_memory_high")),
    "memory.max": CgFile(RW, False, True, _m(lambda m, mc: r.counter_limit(m, mc, "max")),
                         _limit_w("max", "set_memory_max")),
    "memory.events": CgFile(RO, False, True, _m(lambda m, mc: r.events_file(m, mc, False))),
    "memory.events.local": CgFile(RO, False, True,
                                  _m(lambda m, mc: r.events_file(m, mc, True))),
    "memory.stat": CgFile(RO, True, True, _m(r.memory_stat_file)),
    "memory.numa_stat": CgFile(RO, True, True, _m(r.memory_numa_stat_file)),
    "memory.oom.group": CgFile(RW, False, True, _m(lambda m, mc: b"%d\n" % mc.oom_group),
                               _flag_w("oom_group")),
    "memory.reclaim": CgFile(WO, True, True, None,
                             lambda t, cg, data, of: control.reclaim(t.model, cg, data)),
    "memory.peak": CgFile(RW, False, True, _peak_r, _peak_w),
    # swap_files[]: no swap is configured, the counters stay 0
    "memory.swap.current": CgFile(RO, False, True, _m(r.zero)),
    "memory.swap.high": CgFile(RW, False, True,
                               _m(lambda m, mc: r.counter_limit(m, mc, "swap_high")),
                               _limit_w("swap_high")),
    "memory.swap.max": CgFile(RW, False, True,
                              _m(lambda m, mc: r.counter_limit(m, mc, "swap_max")),
                              _limit_w("swap_max")),
    # no swap is modeled: its peak is 0 before and after a reset, so a write has nothing to do
    "memory.swap.peak": CgFile(RW, False, True, _m(r.zero), lambda t, cg, data, of: None),
    "memory.swap.events": CgFile(RO, False, True, _m(r.swap_events_file)),
    # zswap_files[]
    "memory.zswap.current": CgFile(RO, False, True, _m(r.zero)),
    "memory.zswap.max": CgFile(RW, False, True,
                               _m(lambda m, mc: r.counter_limit(m, mc, "zswap_max")),
                               _limit_w("zswap_max")),
    "memory.zswap.writeback": CgFile(RW, True, True,
                                     _m(lambda m, mc: b"%d\n" % mc.zswap_writeback),
                                     _flag_w("zswap_writeback")),
}


def _atomic(write):
    """kernfs_fop_write_iter(): cgroup files set atomic_write_len = PAGE_SIZE (cgroup_kf_ops,
    cgroup_kf_single_ops), so a longer write is refused with E2BIG before the handler runs."""
    def checked(tree, cg, data, of):
        if len(data) > tree.model.page_size:
            raise ModelError(errno.E2BIG, "write longer than a page")
        return write(tree, cg, data, of)
    return checked


CGROUP_FILES = {name: replace(f, write=_atomic(f.write)) if f.write else f
                for name, f in CGROUP_FILES.items()}


def _exists(name, f, root, mem, profile) -> bool:
    if name in GATED_NAMES:        # the profile's table says (version, options, root)
        return cgroup_file_exists(name, root, profile) and (not f.memory or mem)
    return (f.on_root or not root) and (not f.memory or mem)


def files_of(cg, profile=DEFAULT_PROFILE) -> list:
    """The file names a cgroup directory has under the kernel `profile`, in table order."""
    root = cg.is_root()
    mem = root or cg.has_memory_files()
    return [name for name, f in CGROUP_FILES.items() if _exists(name, f, root, mem, profile)]


def has_file(cg, name: str, profile=DEFAULT_PROFILE) -> bool:
    f = CGROUP_FILES.get(name)
    if f is None:
        return False
    root = cg.is_root()
    return _exists(name, f, root, root or cg.has_memory_files(), profile)


def spec_of(name: str, profile=DEFAULT_PROFILE) -> CgFile:
    """The file's row with the profile's mode: a gated file read-only in this version (such as
    memory.peak before 6.12) has no write handler."""
    f = CGROUP_FILES[name]
    row = gated_cgroup_files(profile).get(name)
    if row is None or row.mode == f.mode:
        return f
    return replace(f, mode=row.mode, write=f.write if row.mode & 0o222 else None)
