"""Kernel input parsers: the text a write() hands the kernel -> the value, or the kernel's errno.

Pure functions, no I/O. Each mirrors one kernel function, named in its comment, and raises
`ModelError(errno.EINVAL | ERANGE | EOVERFLOW, ...)` exactly where that function returns the error.
Inputs are `str` (or `bytes`, read as Latin-1 so one byte is one C `char`); as in C, a NUL ends the
string. Character classes are the kernel's (lib/ctype.c): `isspace` is " \\t\\n\\v\\f\\r" and 0xa0.
"""

import errno
import re

from .errors import ModelError
from .model.limits import INT_MAX, INT_MIN, LONG_MAX, ULLONG_MAX, UINT_MAX, page_counter_max

CONTROL_LINE_MAX = 4096  # one page: the longest control-file command (see parse_control)

_KSPACE = " \t\n\v\f\r\xa0"  # lib/ctype.c: the _S class
_HEX = "0123456789abcdefABCDEF"
_SPLIT = re.compile("[" + re.escape(_KSPACE) + "]+")
_SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def _cstr(s) -> str:
    """The C string a kernel function sees: bytes as Latin-1, cut at the first NUL."""
    if isinstance(s, (bytes, bytearray, memoryview)):
        s = bytes(s).decode("latin-1")
    return s.split("\0", 1)[0]


def _at(s: str, i: int) -> str:
    """s[i], or "" for the terminating NUL (so `in` tests never match the end)."""
    return s[i] if i < len(s) else ""


def _isspace(c: str) -> bool:
    return c != "" and c in _KSPACE


def _einval(msg: str) -> ModelError:
    return ModelError(errno.EINVAL, msg)


def _fixup_radix(s: str, base: int):
    """lib/kstrtox.c _parse_integer_fixup_radix: -> (prefix length to skip, base)."""
    if base == 0:
        if _at(s, 0) == "0":
            hexdigit = _at(s, 2) != "" and _at(s, 2) in _HEX
            base = 16 if _at(s, 1) in ("x", "X") and hexdigit else 8
        else:
            base = 10
    if base == 16 and _at(s, 0) == "0" and _at(s, 1) in ("x", "X"):
        return 2, base
    return 0, base


def _parse_integer(s: str, base: int, start: int = 0):
    """lib/kstrtox.c _parse_integer: -> (value mod 2**64, digits consumed, overflowed)."""
    if not 2 <= base <= 16:
        raise ValueError(f"base {base} not supported (2..16 or 0)")
    res, i, overflow = 0, start, False
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9":
            val = ord(c) - 48
        elif c.isascii() and "a" <= c.lower() <= "f":
            val = ord(c.lower()) - 87
        else:
            break
        if val >= base:
            break
        res = res * base + val
        if res > ULLONG_MAX:
            overflow, res = True, res & ULLONG_MAX
        i += 1
    return res, i - start, overflow


def simple_strtoull(s, base: int = 0):
    """lib/vsprintf.c simple_strtoull: -> (value, rest). No sign, no whitespace skipping; a
    value above 2**64 - 1 silently wraps; no digits gives 0 with `rest` the whole input (or the
    text after an explicit-base "0x" prefix)."""
    s = _cstr(s)
    skip, base = _fixup_radix(s, base)
    value, n, _ = _parse_integer(s, base, skip)
    return value, s[skip + n:]


def memparse(s):
    """lib/cmdline.c memparse: simple_strtoull (base auto-detected) then one optional suffix
    K M G T P E (either case, powers of 1024; the shift wraps modulo 2**64) -> (value, rest).
    A bare suffix ("k") is 0 with the suffix consumed."""
    value, rest = simple_strtoull(s, 0)
    shift = _SHIFTS.get(rest[:1].lower()) if rest[:1].isascii() else None
    if shift is not None:
        value = (value << shift) & ULLONG_MAX
        rest = rest[1:]
    return value, rest


def parse_size(s) -> int:
    """A whole token as memparse reads it (control-file and config sizes): nothing may follow
    the number and its suffix, and an empty token is not a size (EINVAL)."""
    s = _cstr(s)
    value, rest = memparse(s)
    if not s or rest:
        raise _einval(f"not a size: {s!r}")
    return value


def strstrip(s) -> str:
    """lib/string_helpers.c strstrip: drop leading and trailing isspace()."""
    return _cstr(s).strip(_KSPACE)


def page_counter_memparse(buf, max_str: str = "max", page_size: int = 4096) -> int:
    """mm/page_counter.c page_counter_memparse, after the strstrip() its callers
    (memory_max_write() and friends) apply: -> pages. `max_str` -> PAGE_COUNTER_MAX;
    otherwise memparse with nothing left over (EINVAL), bytes / PAGE_SIZE capped at
    PAGE_COUNTER_MAX. "" -> 0, "-1" -> EINVAL, 2**64 wraps to 0."""
    buf = strstrip(buf)
    if buf == max_str:
        return page_counter_max(page_size)
    value, rest = memparse(buf)
    if rest:
        raise _einval(f"junk after the number: {rest!r}")
    return min(value // page_size, page_counter_max(page_size))


def _kstrtoull(s: str, base: int) -> int:
    """lib/kstrtox.c _kstrtoull: digits, then at most one newline, then the end."""
    skip, base = _fixup_radix(s, base)
    value, n, overflow = _parse_integer(s, base, skip)
    if overflow:
        raise ModelError(errno.ERANGE, f"out of range: {s!r}")
    if n == 0:
        raise _einval(f"not a number: {s!r}")
    i = skip + n
    if _at(s, i) == "\n":
        i += 1
    if i != len(s):
        raise _einval(f"junk after the number: {s[i:]!r}")
    return value


def kstrtoull(s, base: int = 0) -> int:
    """lib/kstrtox.c kstrtoull: one leading '+' allowed, '-' is EINVAL; ERANGE above 2**64-1."""
    s = _cstr(s)
    if _at(s, 0) == "+":
        s = s[1:]
    return _kstrtoull(s, base)


def kstrtoll(s, base: int = 0) -> int:
    """lib/kstrtox.c kstrtoll: '+' or '-', then kstrtoull's rules; ERANGE outside s64."""
    s = _cstr(s)
    if _at(s, 0) == "-":
        value = _kstrtoull(s[1:], base)
        if value > LONG_MAX + 1:
            raise ModelError(errno.ERANGE, f"out of range: {s!r}")
        return -value
    value = kstrtoull(s, base)
    if value > LONG_MAX:
        raise ModelError(errno.ERANGE, f"out of range: {s!r}")
    return value


def kstrtoint(s, base: int = 0) -> int:
    """lib/kstrtox.c kstrtoint: kstrtoll, then ERANGE outside int."""
    value = kstrtoll(s, base)
    if not INT_MIN <= value <= INT_MAX:
        raise ModelError(errno.ERANGE, f"out of range for int: {value}")
    return value


def kstrtouint(s, base: int = 0) -> int:
    """lib/kstrtox.c kstrtouint: kstrtoull, then ERANGE above UINT_MAX."""
    value = kstrtoull(s, base)
    if value > UINT_MAX:
        raise ModelError(errno.ERANGE, f"out of range for unsigned int: {value}")
    return value


def kstrtobool(s) -> bool:
    """lib/kstrtox.c kstrtobool (since v6.16, with ae5b3500856f "enabled/disabled"): only the
    first character decides: [EeYyTt1] true, [DdNnFf0] false; 'o'/'O' looks at the second
    ([Nn] true, [Ff] false). Anything else, "" included, is EINVAL."""
    s = _cstr(s)
    c = _at(s, 0)
    if c != "" and c in "EeYyTt1":
        return True
    if c != "" and c in "DdNnFf0":
        return False
    if c in ("o", "O"):
        c2 = _at(s, 1)
        if c2 in ("n", "N"):
            return True
        if c2 in ("f", "F"):
            return False
    raise _einval(f"not a boolean: {s!r}")


# --- cpulists: lib/bitmap-str.c bitmap_parselist and friends ---------------------------------

def _end_of_str(c: str) -> bool:
    return c == "" or c == "\n"


def _end_of_region(c: str) -> bool:
    return _isspace(c) or c == "," or _end_of_str(c)


def _getnum(s: str, i: int, lastbit):
    """lib/bitmap-str.c bitmap_getnum: a decimal unsigned int, or 'N' for the last bit."""
    if _at(s, i) == "N":
        if lastbit is None:
            raise _einval("'N' needs the bitmap width")
        return lastbit, i + 1
    value, n, overflow = _parse_integer(s, 10, i)
    if n == 0:
        raise _einval(f"expected a number at {s[i:]!r}")
    if overflow or value > UINT_MAX:
        raise ModelError(errno.EOVERFLOW, f"number too large at {s[i:]!r}")
    return value, i + n


def _parse_region(s: str, i: int, nbits):
    """lib/bitmap-str.c bitmap_parse_region -> (start, end, off, group_len, next index or None)."""
    lastbit = None if nbits is None else nbits - 1
    if s[i:i + 3].lower() == "all":
        if lastbit is None:
            raise _einval("'all' needs the bitmap width")
        start, end, i = 0, lastbit, i + 3
    else:
        start, i = _getnum(s, i, lastbit)
        if _end_of_region(_at(s, i)):
            return start, start, start + 1, start + 1, None if _end_of_str(_at(s, i)) else i
        if _at(s, i) != "-":
            raise _einval(f"unexpected {s[i:]!r}")
        end, i = _getnum(s, i + 1, lastbit)
    if _end_of_region(_at(s, i)):
        return start, end, end + 1, end + 1, None if _end_of_str(_at(s, i)) else i
    if _at(s, i) != ":":
        raise _einval(f"unexpected {s[i:]!r}")
    off, i = _getnum(s, i + 1, lastbit)
    if _at(s, i) != "/":
        raise _einval(f"expected '/' at {s[i:]!r}")
    group_len, i = _getnum(s, i + 1, lastbit)
    return start, end, off, group_len, i


def parse_cpulist(s, nbits=None) -> frozenset:
    """lib/bitmap-str.c bitmap_parselist (cpulist_parse with nbits = nr_cpumask_bits):
    "0-3,8,10-11", "0-1023:2/256" (used/group), "N" and "all" (need nbits), regions separated by
    commas or whitespace; parsing stops at a newline that ends a region. Errors: EINVAL (format),
    ERANGE (a bit >= nbits), EOVERFLOW (a number above UINT_MAX). nbits=None: no upper bound."""
    s = _cstr(s)
    bits = set()
    i = 0
    while i is not None:
        while _isspace(_at(s, i)) or _at(s, i) == ",":  # bitmap_find_region
            i += 1
        if _end_of_str(_at(s, i)):
            break
        start, end, off, group_len, i = _parse_region(s, i, nbits)
        if start > end or group_len == 0 or off > group_len:  # bitmap_check_region
            raise _einval(f"bad region {start}-{end}:{off}/{group_len}")
        if nbits is not None and end >= nbits:
            raise ModelError(errno.ERANGE, f"CPU {end} beyond {nbits - 1}")
        for first in range(start, end + 1, group_len):  # bitmap_set_region
            bits.update(range(first, first + min(end - first + 1, off)))
    return frozenset(bits)


def format_cpulist(cpus) -> str:
    """lib/vsprintf.c bitmap_list_string ("%*pbl"): "0-3,8,10-11", no newline; "" if empty."""
    out = []
    run_start = prev = None
    for cpu in sorted(cpus):
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if run_start is not None:
            out.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
        run_start = prev = cpu
    if run_start is not None:
        out.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
    return ",".join(out)


# --- percpu_test control lines (README, Control files) -------------------------------------------

def parse_control(line, allowed=None, flags=frozenset()) -> dict:
    """Tokenize one control-file write: whitespace-separated `key=value` tokens in any order
    -> {key: value-string}, in the order written; a bare token is accepted only if it is in
    `flags` and maps to True (e.g. flags={"all"} for `free`). EINVAL for: a key not in `allowed`
    (when given), a repeated key, an empty key or value, any other bare token, and a line longer
    than CONTROL_LINE_MAX bytes (our own debugfs-style file: like many kernel debugfs writers we
    refuse rather than cut a write longer than one page). Value syntax is the caller's."""
    size = len(line) if isinstance(line, (bytes, bytearray, memoryview)) else len(
        line.encode("utf-8", "surrogateescape"))
    if size > CONTROL_LINE_MAX:
        raise _einval(f"command longer than {CONTROL_LINE_MAX} bytes")
    args = {}
    for token in _SPLIT.split(_cstr(line).strip(_KSPACE)):
        if not token:
            continue
        key, eq, value = token.partition("=")
        if not eq:
            if token not in flags:
                raise _einval(f"expected key=value, got {token!r}")
        elif not key or not value:
            raise _einval(f"empty key or value in {token!r}")
        elif allowed is not None and key not in allowed:
            raise _einval(f"unknown key {key!r}")
        if key in args:
            raise _einval(f"{key!r} given twice")
        args[key] = value if eq else True
    return args
