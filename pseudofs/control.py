"""Writes: the bytes a file receives, parsed as the kernel's write handler parses them, turned
into one model call. Refusals raise ModelError with the kernel's errno."""

import errno

from pseudofs import kparse
from pseudofs.errors import ModelError
from pseudofs.model.cgroup import CONTROLLERS, INT_MAX

ALLOC_KEYS = {"size", "count", "align", "cgroup", "tag", "account"}
FREE_KEYS = {"tag", "count", "cgroup"}


def _text(data: bytes) -> str:
    return data.decode("latin-1")


# --- cgroup core files ------------------------------------------------------------------------
def subtree_control(model, cg, data: bytes) -> None:
    """cgroup_subtree_control_write(): "+name"/"-name" tokens; the last one for a name wins."""
    enable, disable = set(), set()
    for tok in kparse.strstrip(_text(data)).split(" "):
        if not tok:
            continue
        sign, name = tok[0], tok[1:]
        if sign not in "+-" or name not in CONTROLLERS:
            raise ModelError(errno.EINVAL, f"bad token {tok!r}")
        (enable if sign == "+" else disable).add(name)
        (disable if sign == "+" else enable).discard(name)
    model.subtree_control(cg, enable, disable)


def procs(model, cg, data: bytes, caller_pid: int, host, threadgroup: bool = True,
          permission=None) -> None:
    """__cgroup_procs_write(): one integer (base auto), 0 = the writer. cgroup.procs moves the
    whole process; cgroup.threads (threadgroup=False) one thread, which
    cgroup_attach_permissions() allows only within its domain: the model has no threaded
    subtrees, so a thread may only be "moved" to the cgroup it is in (a no-op).
    `permission(src, dst)`, if given, is cgroup_procs_write_permission(): it raises EACCES."""
    # cgroup_procs_write_start(): `if (kstrtoint(...) || pid < 0) return -EINVAL`, so an int
    # overflow (kstrtoint's ERANGE) is EINVAL too.
    try:
        pid = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    except ModelError:
        pid = -1
    if pid < 0:
        raise ModelError(errno.EINVAL, "not a pid")
    tgid = host.tgid(caller_pid if pid == 0 else pid)
    if tgid is None:
        raise ModelError(errno.ESRCH, f"no such process {pid}")
    if host.is_kernel_thread(tgid):
        raise ModelError(errno.EINVAL, "kernel threads cannot be moved")
    model.reap(host)                   # membership may change, even if this write is refused
    if permission is not None:
        permission(model.cgroup_of(tgid, host), cg)
    if not threadgroup:
        if cg.removed:
            raise ModelError(errno.ENODEV, "cgroup removed")
        # cgroup_migrate_vet_dst() before the same-domain check
        if not cg.is_root() and cg.subtree_control:
            raise ModelError(errno.EBUSY, "no internal processes: controllers are enabled")
        if model.cgroup_of(tgid, host) is not cg:
            raise ModelError(errno.EOPNOTSUPP, "a thread can only move within its domain")
        return
    model.attach(cg, tgid, host)


def max_count(data: bytes) -> int:
    """cgroup_max_descendants_write() / cgroup_max_depth_write()."""
    buf = kparse.strstrip(_text(data))
    if buf == "max":
        return INT_MAX
    value = kparse.kstrtoint(buf, 0)
    if value < 0:
        raise ModelError(errno.ERANGE, "negative")
    return value


def freeze(data: bytes) -> int:
    """cgroup_freeze_write(): 0 or 1, anything else ERANGE."""
    value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    if value not in (0, 1):
        raise ModelError(errno.ERANGE, "freeze takes 0 or 1")
    return value


def kill(data: bytes) -> None:
    """cgroup_kill_write(): only 1."""
    value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    if value != 1:
        raise ModelError(errno.ERANGE, "kill takes 1")


def cgroup_type(data: bytes) -> None:
    """cgroup_type_write(): only "threaded"; the model has no threaded subtrees."""
    if kparse.strstrip(_text(data)) != "threaded":
        raise ModelError(errno.EINVAL, "only 'threaded' can be written")
    raise ModelError(errno.EOPNOTSUPP, "threaded cgroups are not modeled")


# --- memory.* -------------------------------------------------------------------------------
def limit_pages(model, data: bytes) -> int:
    """page_counter_memparse(strstrip(buf), "max")."""
    return kparse.page_counter_memparse(_text(data), "max", model.page_size)


def zero_or_one(data: bytes) -> int:
    """memory_oom_group_write() / zswap_writeback_write(): 0 or 1, else EINVAL."""
    value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    if value not in (0, 1):
        raise ModelError(errno.EINVAL, "takes 0 or 1")
    return value


MAX_SWAPPINESS = 200
NUMBER_BUF_LEN = 24      # lib/parser.c


def _swappiness(val: str) -> bool:
    """lib/parser.c: does "swappiness=%d" match (simple_strtol, base auto, nothing may follow),
    and does match_int() then give an int in 0..MAX_SWAPPINESS?"""
    neg = val[:1] == "-"
    body = val[1:] if neg else val
    value, rest = kparse.simple_strtoull(body, 0)
    if (len(body) == len(rest) and not neg) or rest:
        return False                                 # no match: the token is unknown
    if len(val) >= NUMBER_BUF_LEN:
        return False                                 # match_number(): ERANGE
    value = (-value if neg else value) & kparse.ULLONG_MAX
    if value > kparse.LONG_MAX:
        value -= 1 << 64                             # simple_strtol's long
    return 0 <= value <= MAX_SWAPPINESS


def reclaim(model, cg, data: bytes) -> None:
    """memory_reclaim() -> user_proactive_reclaim(): "<size>[ swappiness=N|max]".
    memparse must consume something (else EINVAL: an empty write, garbage); the rest is
    strstrip()ed and split with strsep(" "), each token "swappiness=%d" or "swappiness=max"."""
    buf = kparse.strstrip(_text(data))
    size, rest = kparse.memparse(buf)
    if len(rest) == len(buf):
        raise ModelError(errno.EINVAL, "no size")
    for tok in kparse.strstrip(rest).split(" "):
        if not tok:
            continue
        if tok == "swappiness=max":
            continue
        if not (tok.startswith("swappiness=") and _swappiness(tok[len("swappiness="):])):
            raise ModelError(errno.EINVAL, f"bad option {tok!r}")
    model.reclaim(cg, size)


# --- cpuN/online ----------------------------------------------------------------------------
def cpu_online(model, cpu: int, data: bytes, now=lambda: 0.0) -> None:
    """`now()`: seconds since boot, asked once the value parsed (the CPU's idle time)."""
    online = kparse.kstrtobool(_text(data))
    model.set_cpu_online(cpu, online, now())


# --- percpu_test ----------------------------------------------------------------------------
def _fits_u64(text: str) -> bool:
    """Does the memparse number (and its suffix shift) of `text` fit 64 bits? memparse wraps
    silently; for our own control files a count, size or align that does not fit is malformed
    (else count=18446744073709551617 would allocate 1 object)."""
    skip, base = kparse._fixup_radix(text, 0)
    value, n, overflow = kparse._parse_integer(text, base, skip)
    shift = kparse._SHIFTS.get(text[skip + n:skip + n + 1].lower(), 0)
    return not overflow and value << shift <= kparse.ULLONG_MAX


def _int(fields, key, default):
    if key not in fields:
        return default
    try:
        value = kparse.parse_size(fields[key])
    except ModelError:
        raise ModelError(errno.EINVAL, f"bad {key}") from None
    if not _fits_u64(kparse._cstr(fields[key])):
        raise ModelError(errno.EINVAL, f"{key} does not fit 64 bits")
    return value


def alloc(model, data: bytes, writer_cgroup) -> None:
    """`writer_cgroup`: a callable giving the writer's cgroup, asked only without cgroup=."""
    f = kparse.parse_control(_text(data), ALLOC_KEYS)
    if "size" not in f:
        raise ModelError(errno.EINVAL, "size= is required")
    size, count, align = _int(f, "size", 0), _int(f, "count", 1), _int(f, "align", 8)
    account = f.get("account", "1")
    if account not in ("0", "1"):
        raise ModelError(errno.EINVAL, "account takes 0 or 1")
    if not 1 <= size <= 32768 or align < 1 or align & (align - 1) or align > model.page_size:
        raise ModelError(errno.EINVAL, "size or align out of range")
    if not 1 <= count <= 100000:
        raise ModelError(errno.EINVAL, "count must be 1..100000")
    cg = model.lookup(f["cgroup"]) if "cgroup" in f else writer_cgroup()
    model.groups.alloc(size, count, align, cg, f.get("tag"), account == "1")


def free(model, data: bytes) -> None:
    f = kparse.parse_control(_text(data), FREE_KEYS, flags={"all"})
    if f.get("all"):
        if len(f) != 1:
            raise ModelError(errno.EINVAL, "all takes no other key")
        model.groups.free_all()
    elif "tag" in f and "cgroup" not in f:
        count = _int(f, "count", None)
        model.groups.free_tag(f["tag"], count)
    elif "cgroup" in f and len(f) == 1:
        model.groups.free_cgroup(f["cgroup"])
    else:
        raise ModelError(errno.EINVAL, "free takes tag=[ count=], cgroup= or all")
