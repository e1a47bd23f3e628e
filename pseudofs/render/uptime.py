"""/proc/uptime (fs/proc/uptime.c, uptime_proc_show): "%lu.%02lu %lu.%02lu\n", the time since
boot and the idle time summed over the possible CPUs, each as seconds and truncated hundredths.
Pure: nanoseconds in, bytes out."""

from pseudofs.model.cputime import NSEC_PER_SEC


def _secs(ns: int) -> str:
    sec, rem = divmod(ns, NSEC_PER_SEC)
    return "%d.%02d" % (sec, rem // (NSEC_PER_SEC // 100))


def uptime(uptime_ns: int, idle_ns: int) -> bytes:
    return ("%s %s\n" % (_secs(uptime_ns), _secs(idle_ns))).encode()
