"""Writes: the bytes a file receives, parsed as the kernel's write handler parses them, into a
typed value; the file table's `apply` then makes the model call. Pure: no model, no I/O.
Refusals raise ModelError with the kernel's errno. Each parser takes (data, page_size)."""

import errno
from typing import NamedTuple, Optional

from pseudofs import kparse
from pseudofs.errors import ModelError
from pseudofs.model.alloc_groups import MAX_COUNT
from pseudofs.model.cgroup import CONTROLLERS
from pseudofs.model.limits import INT_MAX, LONG_MAX, ULLONG_MAX
from pseudofs.model.units import PCPU_MIN_UNIT_SIZE

ALLOC_KEYS = {"size", "count", "align", "cgroup", "tag", "account"}
FREE_KEYS = {"tag", "count", "cgroup"}


class AllocRequest(NamedTuple):
    size: int
    count: int
    align: int
    cgroup: Optional[str]      # None: the writer's cgroup
    tag: Optional[str]         # None: a new unique tag
    account: bool


class FreeRequest(NamedTuple):
    tag: Optional[str] = None
    count: Optional[int] = None
    cgroup: Optional[str] = None
    all: bool = False


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def raw(data: bytes, _page_size: int = 0) -> bytes:
    """A file that takes any bytes and decides in its apply (memory.peak resets on any write,
    a PSI trigger or a fault plan is parsed where its state lives)."""
    return data


# --- cgroup core files ------------------------------------------------------------------------
def subtree_control(data: bytes, _page_size: int = 0) -> tuple:
    """cgroup_subtree_control_write(): "+name"/"-name" tokens; the last one for a name wins.
    -> (names to enable, names to disable)."""
    enable, disable = set(), set()
    for tok in kparse.strstrip(_text(data)).split(" "):
        if not tok:
            continue
        sign, name = tok[0], tok[1:]
        if sign not in "+-" or name not in CONTROLLERS:
            raise ModelError(errno.EINVAL, f"bad token {tok!r}")
        (enable if sign == "+" else disable).add(name)
        (disable if sign == "+" else enable).discard(name)
    return frozenset(enable), frozenset(disable)


def pid(data: bytes, _page_size: int = 0) -> int:
    """cgroup_procs_write_start(): `if (kstrtoint(...) || pid < 0) return -EINVAL`, so an int
    overflow (kstrtoint's ERANGE) is EINVAL too. 0 means the writer."""
    try:
        value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    except ModelError:
        value = -1
    if value < 0:
        raise ModelError(errno.EINVAL, "not a pid")
    return value


def max_count(data: bytes, _page_size: int = 0) -> int:
    """cgroup_max_descendants_write() / cgroup_max_depth_write()."""
    buf = kparse.strstrip(_text(data))
    if buf == "max":
        return INT_MAX
    value = kparse.kstrtoint(buf, 0)
    if value < 0:
        raise ModelError(errno.ERANGE, "negative")
    return value


def freeze(data: bytes, _page_size: int = 0) -> int:
    """cgroup_freeze_write(): 0 or 1, anything else ERANGE."""
    value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    if value not in (0, 1):
        raise ModelError(errno.ERANGE, "freeze takes 0 or 1")
    return value


def kill(data: bytes, _page_size: int = 0) -> int:
    """cgroup_kill_write(): only 1."""
    value = kparse.kstrtoint(kparse.strstrip(_text(data)), 0)
    if value != 1:
        raise ModelError(errno.ERANGE, "kill takes 1")
    return value


def cgroup_type(data: bytes, _page_size: int = 0) -> None:
    """cgroup_type_write(): only "threaded"; the model has no threaded subtrees."""
    if kparse.strstrip(_text(data)) != "threaded":
        raise ModelError(errno.EINVAL, "only 'threaded' can be written")
    raise ModelError(errno.EOPNOTSUPP, "threaded cgroups are not modeled")


# --- memory.* -------------------------------------------------------------------------------
def limit_pages(data: bytes, page_size: int) -> int:
    """page_counter_memparse(strstrip(buf), "max")."""
    return kparse.page_counter_memparse(_text(data), "max", page_size)


def zero_or_one(data: bytes, _page_size: int = 0) -> int:
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
    value = (-value if neg else value) & ULLONG_MAX
    if value > LONG_MAX:
        value -= 1 << 64                             # simple_strtol's long
    return 0 <= value <= MAX_SWAPPINESS


def reclaim(data: bytes, _page_size: int = 0) -> int:
    """memory_reclaim() -> user_proactive_reclaim(): "<size>[ swappiness=N|max]" -> bytes.
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
    return size


# --- cpuN/online ----------------------------------------------------------------------------
def cpu_online(data: bytes, _page_size: int = 0) -> bool:
    """online_store() -> kstrtobool()."""
    return kparse.kstrtobool(_text(data))


# --- percpu_test ----------------------------------------------------------------------------
def _fits_u64(text: str) -> bool:
    """Does the memparse number (and its suffix shift) of `text` fit 64 bits? memparse wraps
    silently; for our own control files a count, size or align that does not fit is malformed
    (else count=18446744073709551617 would allocate 1 object)."""
    skip, base = kparse._fixup_radix(text, 0)
    value, n, overflow = kparse._parse_integer(text, base, skip)
    shift = kparse._SHIFTS.get(text[skip + n:skip + n + 1].lower(), 0)
    return not overflow and value << shift <= ULLONG_MAX


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


def alloc(data: bytes, page_size: int) -> AllocRequest:
    """A percpu_test/alloc command (README, Control files) -> an AllocRequest."""
    f = kparse.parse_control(_text(data), ALLOC_KEYS)
    if "size" not in f:
        raise ModelError(errno.EINVAL, "size= is required")
    size, count, align = _int(f, "size", 0), _int(f, "count", 1), _int(f, "align", 8)
    account = f.get("account", "1")
    if account not in ("0", "1"):
        raise ModelError(errno.EINVAL, "account takes 0 or 1")
    if (not 1 <= size <= PCPU_MIN_UNIT_SIZE or align < 1 or align & (align - 1)
            or align > page_size):
        raise ModelError(errno.EINVAL, "size or align out of range")
    if not 1 <= count <= MAX_COUNT:
        raise ModelError(errno.EINVAL, f"count must be 1..{MAX_COUNT}")
    return AllocRequest(size, count, align, f.get("cgroup"), f.get("tag"), account == "1")


def free(data: bytes, _page_size: int = 0) -> FreeRequest:
    """A percpu_test/free command: all, tag=[ count=], or cgroup=."""
    f = kparse.parse_control(_text(data), FREE_KEYS, flags={"all"})
    if f.get("all"):
        if len(f) != 1:
            raise ModelError(errno.EINVAL, "all takes no other key")
        return FreeRequest(all=True)
    if "tag" in f and "cgroup" not in f:
        return FreeRequest(tag=f["tag"], count=_int(f, "count", None))
    if "cgroup" in f and len(f) == 1:
        return FreeRequest(cgroup=f["cgroup"])
    raise ModelError(errno.EINVAL, "free takes tag=[ count=], cgroup= or all")
