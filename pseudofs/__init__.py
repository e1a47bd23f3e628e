"""pseudofs: procfs, sysfs and cgroup v2 over a model of the percpu allocator and memcg."""

__version__ = "0.1.0"
