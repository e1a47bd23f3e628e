"""Which cgroup a process is in: the processes written into cgroup.procs, and their
descendants started after the join (as after fork). Facts about real processes come from a
`Host` the caller passes in; the model itself reads nothing."""

from typing import Optional, Protocol


class Host(Protocol):
    def tgid(self, tid: int) -> Optional[int]: ...          # None: no such task
    def ppid(self, pid: int) -> Optional[int]: ...
    def start_time(self, pid: int) -> Optional[float]: ...  # same clock as now()
    def now(self) -> float: ...
    def is_kernel_thread(self, pid: int) -> bool: ...
    def btime(self) -> int: ...          # boot time, seconds since the epoch (/proc/stat)
    def clock(self) -> float: ...        # seconds since boot (CLOCK_BOOTTIME): time that moves


class NoHost:
    """For a model without real processes (render, bench, unit tests): every pid is unknown."""

    def tgid(self, tid):
        return None

    def ppid(self, pid):
        return None

    def start_time(self, pid):
        return None

    def now(self):
        return 0.0

    def is_kernel_thread(self, pid):
        return False

    def btime(self):
        return 0

    def clock(self):
        return 0.0


class Membership:
    """pid -> (cgroup, join time, start time) for the processes the model was told about."""

    STATE = ("members",)

    def __init__(self):
        self.members = {}

    def join(self, pid: int, cgroup, host: Host) -> None:
        old = self.members.get(pid)
        if old is not None:
            old[0].remove_proc(pid)
        start, now = host.start_time(pid), host.now()
        self.members[pid] = (cgroup, now, start)
        cgroup.add_proc(pid, now)

    def forget(self, pid: int) -> None:
        old = self.members.pop(pid, None)
        if old is not None:
            old[0].remove_proc(pid)

    def reap(self, host: Host) -> int:
        """Dead processes (or a reused pid with another start time) leave lazily.
        Returns how many left."""
        gone = 0
        for pid, (cg, _join, start) in list(self.members.items()):
            now_start = host.start_time(pid)
            if now_start is None or (start is not None and now_start != start):
                self.forget(pid)
                gone += 1
        return gone

    def cgroup_of(self, pid: int, host: Host, root):
        """The cgroup of `pid`: its own entry, else that of the nearest known ancestor it was
        started after joining; else the root."""
        start = host.start_time(pid)
        if start is None:
            return root
        entry = self.members.get(pid)
        if entry is not None and (entry[2] is None or entry[2] == start):
            return entry[0]
        seen = set()
        p = host.ppid(pid)
        while p and p not in seen:
            seen.add(p)
            entry = self.members.get(p)
            if entry is not None and entry[2] == host.start_time(p) and start >= entry[1]:
                return entry[0]
            p = host.ppid(p)
        return root
