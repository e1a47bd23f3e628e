"""The files of a cgroup directory, one row per cftype: kernel/cgroup/cgroup.c cgroup_base_files[]
and mm/memcontrol.c memory_files[], swap_files[], zswap_files[], in the kernel's order.

Each row: the mode, whether the root has it (CFTYPE_NOT_ON_ROOT), whether it belongs to the
memory controller (it exists where the parent enabled memory, and on the root), the renderer,
and for a writable file the parser of control.py and the model method it applies. Rows marked
`config` may be set from a configuration's `cgroups:` entries.
"""

import errno
from dataclasses import dataclass, replace
from typing import Optional

from pseudofs import control, psi_trigger
from pseudofs.errors import ModelError
from pseudofs.files.cftype_gates import GATED_NAMES, gated_cgroup_files
from pseudofs.files.perms import cgroup_file_attr, procs_write_permission
from pseudofs.files.rows import Row, Write
from pseudofs.render import cgroupfs as r
from pseudofs.render.procfs import profile as profile_of
from pseudofs.render.psi import has_full, pressure

RW, RO, WO = 0o644, 0o444, 0o200
CGROUP_DIR = "/sys/fs/cgroup/{cgroup}"


@dataclass(frozen=True)
class CgFile:
    name: str
    mode: int
    on_root: bool
    memory: bool                        # exists where the parent enabled memory (and on root)
    read: Optional[object] = None       # (ctx, of) -> bytes
    write: Optional[Write] = None
    cache: bool = True
    members: bool = False               # shows where processes are: reap exited ones first


def _mem(fn):
    """A memcg-file reader: fn(model, memcg)."""
    return lambda x, of: fn(x.model, x.cg.memcg)


def _limit(field, method):
    """memory.min/low/high/max, swap.high/max, zswap.max: page_counter_memparse, a setter."""
    return (_mem(lambda m, mc: r.counter_limit(m, mc, field)),
            Write(control.limit_pages, lambda x, v, io: getattr(x.model, method)(x.cg, v),
                  config=True))


def _flag(attr, method):
    return (_mem(lambda m, mc: b"%d\n" % getattr(mc, attr)),
            Write(control.zero_or_one, lambda x, v, io: getattr(x.model, method)(x.cg, v),
                  config=True))


def _procs(threadgroup):
    def apply(x, pid, io):
        of = io.of
        x.model.procs_write(
            x.cg, pid, of.current.pid, io.host, threadgroup=threadgroup,
            # cgroup_procs_write_permission() with the opener's credentials (f_cred)
            permission=lambda src, dst: procs_write_permission(of.caller, src, dst, RW))
    return Write(control.pid, apply)


def _peak_read(x, of):
    return b"%d\n" % (x.model.peak_read(x.cg, id(of)) * x.model.page_size)


def _peak_reset(x, _value, io):
    x.model.peak_reset(x.cg, id(io.of))
    io.of.private["peak_cgroup"] = x.cg          # released with the file (Routes.release)


def _subtree_apply(x, value, io):
    if io is not None:
        x.model.reap(io.host)   # "no internal processes" must not count ones that exited
    x.model.subtree_control(x.cg, *value)


def _psi(resource):
    """A cgroup's pressure file (cgroup_psi_files[]): zero averages; a write registers a trigger
    on the open file (psi_trigger.py: the kernel's refusals, nothing ever fires)."""
    def apply(x, data, io):
        psi_trigger.write(data, has_full(resource, profile_of(x.model)), io.of.private,
                          procfs=False)
    return (lambda x, of: pressure(resource, profile_of(x.model))), Write(control.raw, apply)


_procs_read = lambda x, of: r.procs(x.model, x.cg)          # noqa: E731

CGROUP_FILES = (
    # kernel/cgroup/cgroup.c cgroup_base_files[] (no PSI files: model choice)
    CgFile("cgroup.type", RW, False, False, lambda x, of: r.cgroup_type(x.model, x.cg),
           Write(control.cgroup_type, lambda x, v, io: None)),
    CgFile("cgroup.procs", RW, True, False, _procs_read, _procs(True), members=True),
    CgFile("cgroup.threads", RW, True, False, _procs_read, _procs(False), members=True),
    CgFile("cgroup.controllers", RO, True, False, lambda x, of: r.controllers(x.model, x.cg)),
    CgFile("cgroup.subtree_control", RW, True, False,
           lambda x, of: r.subtree_control(x.model, x.cg),
           Write(control.subtree_control, _subtree_apply)),
    CgFile("cgroup.events", RO, False, False, lambda x, of: r.events(x.model, x.cg),
           members=True),
    CgFile("cgroup.max.descendants", RW, True, False,
           lambda x, of: r.max_value(x.cg.max_descendants),
           Write(control.max_count, lambda x, v, io: x.model.set_max_descendants(x.cg, v),
                 config=True)),
    CgFile("cgroup.max.depth", RW, True, False, lambda x, of: r.max_value(x.cg.max_depth),
           Write(control.max_count, lambda x, v, io: x.model.set_max_depth(x.cg, v),
                 config=True)),
    CgFile("cgroup.stat", RO, True, False, lambda x, of: r.cgroup_stat(x.model, x.cg)),
    CgFile("cgroup.stat.local", RO, False, False, lambda x, of: r.stat_local(x.model, x.cg)),
    CgFile("cgroup.freeze", RW, False, False, lambda x, of: b"%d\n" % x.cg.freeze,
           Write(control.freeze, lambda x, v, io: x.model.set_freeze(x.cg, v), config=True)),
    CgFile("cgroup.kill", WO, False, False, None,
           Write(control.kill, lambda x, v, io: x.model.kill(x.cg))),
    CgFile("cpu.stat", RO, True, False, lambda x, of: r.cpu_stat(x.model, x.cg)),
    CgFile("cpu.stat.local", RO, True, False, lambda x, of: b""),
    # cgroup_psi_files[] (CONFIG_PSI; which exist: files/cftype_gates.py)
    CgFile("io.pressure", RW, True, False, *_psi("io")),
    CgFile("memory.pressure", RW, True, False, *_psi("memory")),
    CgFile("cpu.pressure", RW, True, False, *_psi("cpu")),
    # mm/memcontrol.c memory_files[]
    CgFile("memory.current", RO, False, True, _mem(r.current)),
    CgFile("memory.min", RW, False, True, *_limit("min", "set_memory_min")),
    CgFile("memory.low", RW, False, True, *_limit("low", "set_memory_low")),
    CgFile("memory.high", RW, False, True, *_limit("high", "set_memory_high")),
    CgFile("memory.max", RW, False, True, *_limit("max", "set_memory_max")),
    CgFile("memory.events", RO, False, True, _mem(lambda m, mc: r.events_file(m, mc, False))),
    CgFile("memory.events.local", RO, False, True,
           _mem(lambda m, mc: r.events_file(m, mc, True))),
    CgFile("memory.stat", RO, True, True, _mem(r.memory_stat_file)),
    CgFile("memory.numa_stat", RO, True, True, _mem(r.memory_numa_stat_file)),
    CgFile("memory.oom.group", RW, False, True, *_flag("oom_group", "set_oom_group")),
    CgFile("memory.reclaim", WO, True, True, None,
           Write(control.reclaim, lambda x, v, io: x.model.reclaim(x.cg, v))),
    # per open file: a reset through one descriptor shows in that one only
    CgFile("memory.peak", RW, False, True, _peak_read, Write(control.raw, _peak_reset),
           cache=False),
    # swap_files[]: no swap is modeled, the counters stay 0
    CgFile("memory.swap.current", RO, False, True, _mem(r.zero)),
    CgFile("memory.swap.high", RW, False, True, *_limit("swap_high", "set_swap_high")),
    CgFile("memory.swap.max", RW, False, True, *_limit("swap_max", "set_swap_max")),
    # its peak is 0 before and after a reset, so a write has nothing to do
    CgFile("memory.swap.peak", RW, False, True, _mem(r.zero),
           Write(control.raw, lambda x, v, io: None)),
    CgFile("memory.swap.events", RO, False, True, _mem(r.swap_events_file)),
    # zswap_files[]
    CgFile("memory.zswap.current", RO, False, True, _mem(r.zero)),
    CgFile("memory.zswap.max", RW, False, True, *_limit("zswap_max", "set_zswap_max")),
    CgFile("memory.zswap.writeback", RW, True, True,
           *_flag("zswap_writeback", "set_zswap_writeback")),
)


def _atomic(parse):
    """kernfs_fop_write_iter(): cgroup files set atomic_write_len = PAGE_SIZE (cgroup_kf_ops,
    cgroup_kf_single_ops), so a longer write is refused with E2BIG before the handler runs."""
    def checked(data, page_size):
        if len(data) > page_size:
            raise ModelError(errno.E2BIG, "write longer than a page")
        return parse(data, page_size)
    return checked


def has_file(cg, f: CgFile, profile) -> bool:
    """Does cgroup `cg` have the file `f` (kernel/cgroup/cgroup.c cgroup_addrm_files: not on
    the root with CFTYPE_NOT_ON_ROOT; a controller's files where the parent enabled it; a file
    of a version or an option only where the kernel profile has it)?"""
    root = cg.is_root()
    if f.memory and not (root or cg.has_memory_files()):
        return False
    if f.name in GATED_NAMES:
        row = gated_cgroup_files(profile).get(f.name)
        return row is not None and (row.on_root or not root)
    return f.on_root or not root


def _mode(f: CgFile, profile) -> int:
    """The file's mode in this kernel profile (memory.peak is read-only before 6.12)."""
    row = gated_cgroup_files(profile).get(f.name) if f.name in GATED_NAMES else None
    return f.mode if row is None else row.mode


def _row(f: CgFile) -> Row:
    write = replace(f.write, parse=_atomic(f.write.parse)) if f.write else None
    return Row(
        f"{CGROUP_DIR}/{f.name}", f.mode, read=f.read, write=write, cache=f.cache,
        members=f.members, cgroup_file=True,
        exists=lambda x: has_file(x.cg, f, profile_of(x.model)),
        writable=(lambda x: bool(_mode(f, profile_of(x.model)) & 0o222)) if write else None,
        owner=lambda x: cgroup_file_attr(x.cg, f.name, _mode(f, profile_of(x.model))))


ROWS = tuple(_row(f) for f in CGROUP_FILES)
ROW_BY_NAME = {row.name: row for row in ROWS}
#: The files a configuration's `cgroups:` entry may set, with the rows that parse and apply them.
CONFIG_FILES = {row.name: row for row in ROWS if row.write is not None and row.write.config}
