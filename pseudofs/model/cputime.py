"""CPU time accounting: how long each possible CPU has been online since boot, all of it idle
(the model runs no tasks). The caller passes every time in; the model reads no clock.

Times are seconds since boot (the clock /proc/uptime shows: CLOCK_BOOTTIME). A CPU online at
boot is online from 0. The kernel keeps the counters in nanoseconds (kcpustat) and converts at
show time: nsec_to_clock_t() in show_stat() (fs/proc/stat.c) per line, and the idle sum of
uptime_proc_show() (fs/proc/uptime.c) as seconds and hundredths; so do we.
"""

from typing import Dict, Iterable, List

NSEC_PER_SEC = 1_000_000_000
USER_HZ = 100                                    # include/asm-generic/param.h


def nsec_to_clock_t(ns: int) -> int:
    """kernel/time/time.c nsec_to_clock_t() with USER_HZ = 100."""
    return ns // (NSEC_PER_SEC // USER_HZ)


def to_ns(seconds: float) -> int:
    return int(round(seconds * NSEC_PER_SEC))


class CpuTime:
    """Per-CPU online intervals [start, end) in ns; an open interval ends at `now`."""

    STATE = ("closed_ns", "since")

    def __init__(self, possible: Iterable[int], online: Iterable[int]):
        self.closed_ns: Dict[int, int] = {c: 0 for c in possible}   # finished intervals
        self.since: Dict[int, int] = {c: 0 for c in online}          # open interval start

    def set_online(self, cpu: int, online: bool, now: float) -> None:
        """The CPU came up or went down at `now` (seconds since boot). A time earlier than
        the interval's start (a clock that went back) counts as that start."""
        t = to_ns(now)
        if online and cpu not in self.since:
            self.since[cpu] = t
        elif not online and cpu in self.since:
            start = self.since.pop(cpu)
            self.closed_ns[cpu] = self.closed_ns.get(cpu, 0) + max(0, t - start)

    def idle_ns(self, cpu: int, now: float) -> int:
        """get_idle_time(): an online CPU's idle grows with time, an offline one's stays."""
        ns = self.closed_ns.get(cpu, 0)
        if cpu in self.since:
            ns += max(0, to_ns(now) - self.since[cpu])
        return ns

    def idle_ns_all(self, now: float) -> Dict[int, int]:
        return {c: self.idle_ns(c, now) for c in self.closed_ns}

    def stat_lines(self, now: float) -> Dict[int, List[int]]:
        """The ten /proc/stat counters (USER_HZ ticks) of every possible CPU: idle only."""
        return {c: [0, 0, 0, nsec_to_clock_t(ns), 0, 0, 0, 0, 0, 0]
                for c, ns in self.idle_ns_all(now).items()}

    def stat_total(self, now: float) -> List[int]:
        """The aggregate "cpu" line: show_stat() sums the nanoseconds of every possible CPU,
        then converts (so it may exceed the sum of the per-CPU lines by rounding)."""
        return [0, 0, 0, nsec_to_clock_t(sum(self.idle_ns_all(now).values())),
                0, 0, 0, 0, 0, 0]
