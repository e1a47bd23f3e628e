"""Facts about the real processes that use the mount, read from the host's /proc."""

import os
import time
from typing import List, Optional

PF_KTHREAD = 0x00200000
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> Optional[List[str]]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ")"
    return data[data.rindex(")") + 2:].split()


class ProcHost:
    def tgid(self, tid: int) -> Optional[int]:
        try:
            with open(f"/proc/{tid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Tgid:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def ppid(self, pid: int) -> Optional[int]:
        f = _stat_fields(pid)
        return int(f[1]) if f else None

    def start_time(self, pid: int) -> Optional[float]:
        f = _stat_fields(pid)
        return int(f[19]) / _CLK_TCK if f else None

    def now(self) -> float:
        """Seconds since boot, one tick early: a process forked right after a join may show
        the same start tick as the join (start times count whole ticks)."""
        with open("/proc/uptime", "rb") as f:
            return float(f.read().split()[0]) - 1.0 / _CLK_TCK

    def is_kernel_thread(self, pid: int) -> bool:
        f = _stat_fields(pid)
        return bool(f and int(f[6]) & PF_KTHREAD)

    def btime(self) -> int:
        """The host's boot time: the processes the tools see have start times counted from
        it (/proc/PID/stat), so /proc/stat under the mount must say the same."""
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return int(line.split()[1])
        return 0

    def clock(self) -> float:
        """Seconds since boot, as the host's /proc/uptime counts them (CLOCK_BOOTTIME), so the
        mount's uptime plus the host's btime is the wall time."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)
