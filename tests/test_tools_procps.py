"""procps' `vmstat -s`, `vmstat` and `free`, unmodified, through `pseudofs exec` (they read the fixed
paths /proc/meminfo, /proc/vmstat and /proc/stat)."""

import re

import pytest

from tools.toolkit import CONFIG, kv, meminfo, need, pseudofs_exec, read, scenario


def used_choices(mi):
    """procps computes `used` as MemTotal - MemAvailable (4.x) or as total - free - buffers -
    cache (3.3); both are the same number here, where buffers and the page cache are empty."""
    cache = mi["Cached"] + mi["SReclaimable"]
    return {mi["MemTotal"] - mi["MemAvailable"], mi["MemTotal"] - mi["MemFree"] - mi["Buffers"]
            - cache}


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_vmstat_s(mounted, mode):
    need("procps", "vmstat")
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    out = pseudofs_exec(mnt, "vmstat", "-s").stdout
    got = {}
    for line in out.splitlines():
        m = re.fullmatch(r"\s*(\d+) (?:K )?(.+)", line)
        assert m, line
        got[m.group(2)] = int(m.group(1))
    mi = meminfo(read(mnt, "proc/meminfo"))
    vm = kv(read(mnt, "proc/vmstat"))
    assert got["total memory"] == mi["MemTotal"] == 8 << 20
    assert got["free memory"] == mi["MemFree"]
    assert got["used memory"] in used_choices(mi) and got["used memory"] > 0
    assert got["active memory"] == mi["Active"] and got["inactive memory"] == mi["Inactive"]
    assert got["total swap"] == mi["SwapTotal"] and got["free swap"] == mi["SwapFree"]
    assert got["pages swapped in"] == vm["pswpin"] and got["paged in"] == vm["pgpgin"]
    assert got["CPU context switches"] == 0 and got["forks"] == 0


def test_free(mounted):
    need("procps", "free")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    mi = meminfo(read(mnt, "proc/meminfo"))
    rows = {}
    for line in pseudofs_exec(mnt, "free", "-k", "-w").stdout.splitlines()[1:]:
        label, *values = line.split()
        rows[label] = [int(v) for v in values]
    total, used, free, shared, buffers, cache, available = rows["Mem:"]
    assert (total, free, shared, buffers, available) == (
        mi["MemTotal"], mi["MemFree"], mi["Shmem"], mi["Buffers"], mi["MemAvailable"])
    assert cache == mi["Cached"] + mi["SReclaimable"]
    assert used in used_choices(mi)
    assert rows["Swap:"] == [mi["SwapTotal"], mi["SwapTotal"] - mi["SwapFree"], mi["SwapFree"]]
    # bytes, as a script would ask for them
    mem = pseudofs_exec(mnt, "free", "-b").stdout.splitlines()[1].split()
    assert int(mem[1]) == mi["MemTotal"] * 1024 and int(mem[3]) == mi["MemFree"] * 1024


def test_vmstat_one_line(mounted):
    need("procps", "vmstat")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    lines = pseudofs_exec(mnt, "vmstat").stdout.splitlines()
    head, values = lines[1].split(), lines[2].split()
    row = dict(zip(head, values))
    assert int(row["free"]) == meminfo(read(mnt, "proc/meminfo"))["MemFree"]
    assert int(row["id"]) == 100 and int(row["swpd"]) == 0
