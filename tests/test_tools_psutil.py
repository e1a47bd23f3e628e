"""psutil (PyPI) with psutil.PROCFS_PATH at the mount: virtual_memory(), swap_memory(), and the
per-CPU times of /proc/stat, with psutil's own warnings (a field it could not find) as errors."""

import warnings

import pytest

from tools.toolkit import CONFIG, ONLINE_AFTER, kv, meminfo, missing, read, scenario


@pytest.fixture
def psutil_at(mounted):
    try:
        import psutil
    except ImportError:
        missing("psutil", "psutil (pip install psutil)")
    saved = psutil.PROCFS_PATH

    def at(mode):
        mnt = mounted(CONFIG % mode)
        scenario(mnt)
        psutil.PROCFS_PATH = f"{mnt}/proc"
        return psutil, mnt
    yield at
    psutil.PROCFS_PATH = saved


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_virtual_and_swap_memory(psutil_at, mode):
    psutil, mnt = psutil_at(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # psutil warns when a meminfo field is missing
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
    mi = {k: v * 1024 for k, v in meminfo(read(mnt, "proc/meminfo")).items()}
    assert vm.total == mi["MemTotal"] == 8 << 30
    assert vm.free == mi["MemFree"] and vm.available == mi["MemAvailable"]
    assert vm.buffers == mi["Buffers"] and vm.shared == mi["Shmem"]
    assert vm.cached == mi["Cached"] + mi["SReclaimable"]
    assert vm.used in (vm.total - vm.available, vm.total - vm.free - vm.buffers - vm.cached)
    assert vm.used == mi["MemTotal"] - mi["MemFree"] > 0       # the scenario's percpu pages
    stat = kv(read(mnt, "proc/vmstat"))
    assert (sw.total, sw.free, sw.used) == (mi["SwapTotal"], mi["SwapFree"], 0)
    assert (sw.sin, sw.sout) == (stat["pswpin"] * 4096, stat["pswpout"] * 4096)


def test_cpu_times_follow_online_cpus(psutil_at):
    psutil, mnt = psutil_at("per-node")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_cpu = psutil.cpu_times(percpu=True)
        stats = psutil.cpu_stats()
    # psutil lists the cpuN lines of /proc/stat in order, i.e. the online CPUs
    assert len(per_cpu) == len(ONLINE_AFTER)
    assert stats.ctx_switches == 0 and stats.interrupts == 0


def test_boot_time_is_the_hosts(psutil_at):
    """psutil.boot_time() reads btime: the host's, since the start times of the real processes
    the tools see (/proc/PID/stat) count from it."""
    psutil, mnt = psutil_at("per-node")
    real = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime "))
    assert psutil.boot_time() == real > 0
