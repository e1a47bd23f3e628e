"""Kernel text, as data and pure formatters: plain values in, bytes out.

No model, FUSE or file I/O here. Key orders and config gates are tables
(one module per kernel file family, named after it); a profile
(:mod:`.profile`) selects the gated rows.

* :mod:`.text`: "name value" lines, decimals, page-counter limits
* :mod:`.vmstat_text`: /proc/vmstat, nodeN/vmstat (mm/vmstat.c)
* :mod:`.meminfo`: /proc/meminfo, nodeN/meminfo, nodeN/numastat
* :mod:`.bitmap`: cpulist/nodelist ("%*pbl"), cpumap ("%*pb"), distance
* :mod:`.memcg_stats`: memory.stat, memory.numa_stat, memory.events
* :mod:`.percpu_stats`: debugfs percpu_stats
* :mod:`.proc_stat`, :mod:`.cpuinfo`, :mod:`.cgroup_text`: /proc/stat,
  /proc/cpuinfo, /proc/cgroups and /proc/PID/cgroup

Import from the modules (``from pseudofs.render.meminfo import meminfo``):
several formatters share their module's name, so the package re-exports
nothing, which keeps ``pseudofs.render.meminfo`` the module.
"""
