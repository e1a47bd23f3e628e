"""Pressure stall information files (kernel/sched/psi.c psi_show): /proc/pressure/{cpu,memory,
io} and the cgroups' {cpu,memory,io}.pressure, when CONFIG_PSI is on. Nothing stalls in the
model, so every average and total is zero.

psi_show prints "some" then "full", each as
"%s avg10=%lu.%02lu avg60=%lu.%02lu avg300=%lu.%02lu total=%llu\\n". Before 5.13 the CPU
resource had no "full" line (the loop ran `full < 2 - (res == PSI_CPU)`); PSI_CPU_FULL came in
5.13, and the system-level CPU full line stays, all zero.
"""

from .profile import DEFAULT_PROFILE, enabled

RESOURCES = ("cpu", "memory", "io")

#: (line, resource it is on, gate)
PSI_LINES = (
    ("some", None, None),
    ("full", "cpu", ">=5.13"),
    ("full", "memory", None),
    ("full", "io", None),
)


def pressure(resource, profile=DEFAULT_PROFILE) -> bytes:
    """One pressure file, all zero."""
    return "".join(
        "%s avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" % line
        for line, res, gate in PSI_LINES
        if res in (None, resource) and enabled(gate, profile)).encode()


def has_full(resource, profile=DEFAULT_PROFILE) -> bool:
    """Whether the resource has a "full" state (psi_trigger_create refuses "full" otherwise)."""
    return any(line == "full" and res in (None, resource) and enabled(gate, profile)
               for line, res, gate in PSI_LINES)
