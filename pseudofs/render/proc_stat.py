"""/proc/stat (fs/proc/stat.c, show_stat).

Layout: "cpu  " + ten values (the sum over possible CPUs), one "cpuN" line
per ONLINE CPU, "intr <total>" + one " <count>" per interrupt number
(nr_irqs of them), then ctxt, btime, processes, procs_running,
procs_blocked, and "softirq <total>" + the NR_SOFTIRQS (10) counts.

Deterministic rule (the model has no scheduler): every time counter is 0
unless the caller passes `cpu_times`; no interrupt counts (an "intr 0"
line) unless `irqs` is passed; procs_running is 1 (the reader), the other
process counters 0; btime as given (0 by default). The aggregate "cpu" line
is the sum of `cpu_times` over every CPU given there (the kernel sums the
possible CPUs, whose offline counters stay), unless `cpu_total` is given:
the kernel converts the summed nanoseconds, so its total can differ by
rounding from the sum of the per-CPU lines.
"""

#: Columns of the cpu lines, in order.
CPU_TIME_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq",
                   "softirq", "steal", "guest", "guest_nice")
#: include/linux/interrupt.h softirq_to_name order.
SOFTIRQ_NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL",
                 "TASKLET", "SCHED", "HRTIMER", "RCU")

_ZEROS = (0,) * len(CPU_TIME_FIELDS)


def _vals(values):
    return "".join(" %d" % v for v in values)


def proc_stat(online_cpus, cpu_times=None, cpu_total=None, irqs=(),
              intr_total=None, ctxt=0, btime=0, processes=0, procs_running=1,
              procs_blocked=0, softirqs=None) -> bytes:
    """/proc/stat. `cpu_times` maps a CPU to its ten counters (USER_HZ
    ticks); CPUs absent from it print zeros."""
    times = dict(cpu_times or {})
    if cpu_total is None:
        cpu_total = [sum(t[i] for t in times.values())
                     for i in range(len(CPU_TIME_FIELDS))]
    softirqs = tuple(softirqs) if softirqs is not None else (0,) * len(SOFTIRQ_NAMES)
    irqs = tuple(irqs)
    out = ["cpu " + _vals(cpu_total) + "\n"]
    out += ["cpu%d%s\n" % (c, _vals(times.get(c, _ZEROS)))
            for c in sorted(online_cpus)]
    out.append("intr %d%s\n" % (sum(irqs) if intr_total is None else intr_total,
                                _vals(irqs)))
    out.append("ctxt %d\nbtime %d\nprocesses %d\nprocs_running %d\n"
               "procs_blocked %d\n" % (ctxt, btime, processes, procs_running,
                                       procs_blocked))
    out.append("softirq %d%s\n" % (sum(softirqs), _vals(softirqs)))
    return "".join(out).encode()
