"""A write to a pressure file registers a trigger (kernel/sched/psi.c psi_write,
psi_trigger_create). Nothing stalls in the model, so a trigger never fires; what is kept is the
kernel's refusals: an empty write, a malformed or out-of-range "some|full THRESHOLD WINDOW"
(EINVAL), a second trigger on the same open file (EBUSY)."""

import errno
import re

from .errors import ModelError

WINDOW_MIN_US = 500000        # kernel/sched/psi.c
WINDOW_MAX_US = 10000000
_BUF = 32                     # psi_write: char buf[32]; the last byte copied becomes the NUL
# sscanf("some %u %u"): vsscanf() takes no '+' sign, and stores a wider value cut to 32 bits
_SPEC = re.compile(rb"(some|full)\s*(\d+)\s*(\d+)")
U32 = (1 << 32) - 1


def write(data: bytes, has_full: bool, private: dict, procfs: bool = True) -> None:
    """Check a trigger write to one open pressure file; `has_full`: the resource has a "full"
    state (not CPU before 5.13); `private` is the open file's state (one trigger each).
    /proc/pressure (psi_write) copies at most 32 bytes and overwrites the last one with the
    NUL; a cgroup's file (pressure_write) gets kernfs' whole NUL-terminated buffer."""
    if not data:
        raise ModelError(errno.EINVAL, "empty write")
    buf = data[:_BUF][:-1] if procfs else data
    m = _SPEC.match(buf)
    if m is None:
        raise ModelError(errno.EINVAL, "expected 'some|full THRESHOLD_US WINDOW_US'")
    kind, threshold, window = m.group(1), int(m.group(2)) & U32, int(m.group(3)) & U32
    if kind == b"full" and not has_full:
        raise ModelError(errno.EINVAL, "no full state for this resource")
    if not WINDOW_MIN_US <= window <= WINDOW_MAX_US:
        raise ModelError(errno.EINVAL, "window out of range")
    if threshold == 0 or threshold > window:
        raise ModelError(errno.EINVAL, "threshold out of range")
    if private.get("psi_trigger"):
        raise ModelError(errno.EBUSY, "a trigger is already registered on this file")
    private["psi_trigger"] = (kind.decode(), threshold, window)
