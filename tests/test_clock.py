"""kernel.clock (docs/time.md): on a live mount /proc/stat's idle counters and /proc/uptime move
with the host's CLOCK_BOOTTIME, an offline CPU's line goes and its counters stop; a frozen mount
renders the same bytes whenever it is read; a hotplug time is recorded by the state log."""

import os
import re
import subprocess
import sys
import time

import pytest

from daemon_util import REPO
from helpers import walk as render_mount
from pseudofs.fs import statelog
from pseudofs.fs.host import ProcHost
from pseudofs.fs.tree import Caller, OpenFile
from tools.toolkit import need, pseudofs_exec

TOPOLOGY = """
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 1G}
    - {id: 1, cpus: "3-4", hotplug_cpus: "5", memory: 1G}
"""
LIVE = "kernel: {clock: live}" + TOPOLOGY
FROZEN = "kernel: {clock: frozen}" + TOPOLOGY
POSSIBLE = 6


def stat(mnt):
    """(aggregate idle, {cpu: idle}, btime) of MNT/proc/stat, read with one read()."""
    with open(mnt + "/proc/stat") as f:
        text = f.read()
    cpus, total, btime = {}, None, None
    for line in text.splitlines():
        f = line.split()
        if f[0] == "cpu":
            total = int(f[4])
        elif re.fullmatch(r"cpu\d+", f[0]):
            assert [int(v) for i, v in enumerate(f[1:]) if i != 3] == [0] * 9, line
            cpus[int(f[0][3:])] = int(f[4])
        elif f[0] == "btime":
            btime = int(f[1])
    return total, cpus, btime


def uptime(mnt):
    with open(mnt + "/proc/uptime") as f:
        text = f.read()
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d\n", text), text
    up, idle = text.split()
    return float(up), float(idle)


def test_live_idle_moves_per_online_cpu_and_stops_offline(mounted):
    mnt = mounted(LIVE)
    _, before, _ = stat(mnt)
    t0 = time.monotonic()
    time.sleep(1.0)
    _, after, _ = stat(mnt)
    dt = time.monotonic() - t0
    assert sorted(after) == [0, 1, 2, 3, 4]
    for cpu in after:
        # USER_HZ ticks per second of wall time; the reads themselves take a few ms
        assert abs((after[cpu] - before[cpu]) - 100 * dt) <= 5, (cpu, before, after, dt)

    with open(mnt + "/sys/devices/system/cpu/cpu3/online", "w") as f:
        f.write("0")
    total1, c1, _ = stat(mnt)
    up1, idle1 = uptime(mnt)
    time.sleep(0.5)
    total2, c2, _ = stat(mnt)
    up2, idle2 = uptime(mnt)
    assert 3 not in c1 and 3 not in c2 and sorted(c2) == [0, 1, 2, 4]
    # the aggregate sums every possible CPU: the offline CPU 3's frozen counter is the part
    # the online lines do not explain, the same before and after (each line truncates, so a
    # tick per line either way)
    frozen1, frozen2 = total1 - sum(c1.values()), total2 - sum(c2.values())
    assert abs(frozen1 - frozen2) <= POSSIBLE and frozen1 > 1000, (frozen1, frozen2)
    # the aggregate grows by the four online CPUs only
    moved = sum(c2[c] - c1[c] for c in c2)
    assert abs((total2 - total1) - moved) <= POSSIBLE
    assert abs(moved - 4 * 100 * (up2 - up1)) <= 4 * 3, (moved, up1, up2)
    # /proc/uptime's idle is the same sum as the aggregate line, in seconds
    assert abs(idle2 - total2 / 100) <= 0.02 + POSSIBLE / 100, (idle2, total2)

    with open(mnt + "/sys/devices/system/cpu/cpu3/online", "w") as f:
        f.write("1")
    _, c3, _ = stat(mnt)
    assert abs(c3[3] - frozen2) <= POSSIBLE          # back online, from where it stopped


def test_live_uptime_advances_and_agrees_with_btime(mounted):
    mnt = mounted(LIVE)
    up1, idle1 = uptime(mnt)
    _, _, btime = stat(mnt)
    assert abs(btime + up1 - time.time()) < 1.5, (btime, up1)
    with open("/proc/uptime") as f:
        host_up = float(f.read().split()[0])
    assert abs(host_up - up1) < 0.5                     # the host's CLOCK_BOOTTIME
    time.sleep(0.3)
    up2, idle2 = uptime(mnt)
    assert 0.25 <= up2 - up1 < 1.0
    assert 5 * 0.25 <= idle2 - idle1 < 5 * 1.0          # five online CPUs idle
    assert "uptime" in os.listdir(mnt + "/proc")


def test_frozen_renders_identical_a_second_apart(mounted):
    mnt = mounted(FROZEN)
    first = render_mount(mnt)
    time.sleep(1.0)
    second = render_mount(mnt)
    assert first == second
    assert "/proc/uptime" not in first and "uptime" not in os.listdir(mnt + "/proc")
    total, cpus, _ = stat(mnt)
    assert total == 0 and set(cpus.values()) == {0}


def test_sar_through_exec_reports_idle(mounted):
    need("sysstat", "sar")
    mnt = mounted(LIVE)
    r = pseudofs_exec(mnt, "env", "LC_ALL=C", "S_TIME_FORMAT=ISO", "sar", "-u", "1", "1")
    avg = [line.split() for line in r.stdout.splitlines() if line.startswith("Average:")]
    assert avg and avg[0][1] == "all", r.stdout
    assert float(avg[0][-1]) >= 99.0, r.stdout          # %idle
    assert "(5 CPU)" in r.stdout, r.stdout               # the mount's online CPUs


def test_live_hotplug_time_is_recorded_and_replayed(tmp_path):
    """The state log records the clock a hotplug asked; a restart puts the CPU's idle time
    where it stopped, not where the restart's clock is."""
    path = str(tmp_path / "state")
    t = statelog.open_state(path, LIVE, "live.yaml", ProcHost(), clock_default="live")
    try:
        of = OpenFile("/sys/devices/system/cpu/cpu4/online", os.O_WRONLY, Caller())
        t.write(of, b"0")
        stopped = t.model.cputime.idle_ns(4, 1e9)          # any later time: it stays
        assert stopped > 0
    finally:
        t.close()
    time.sleep(0.05)
    t2 = statelog.open_state(path, None, "live.yaml", ProcHost(), clock_default="live")
    try:
        assert 4 not in t2.model.topo.online
        assert t2.model.cputime.idle_ns(4, 1e9) == stopped
    finally:
        t2.close()


def test_clock_key_is_checked():
    from pseudofs.config import parse_config
    from pseudofs.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        parse_config("kernel: {clock: ticking}\n", "c.yaml")
    assert "kernel.clock" in e.value.problems[0] and "live, frozen" in e.value.problems[0]
    assert parse_config("kernel: {clock: frozen}\n").kernel.clock == "frozen"
    assert parse_config("").kernel.clock is None         # the command decides


def test_render_is_frozen_even_for_a_live_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LIVE)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "pseudofs", "render", "-c", str(cfg), str(out)],
                   check=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert not (out / "proc/uptime").exists()
    assert (out / "proc/stat").read_text().startswith("cpu  0 0 0 0 0 0 0 0 0 0\n")


def test_ps_process_age_through_exec_is_the_hosts(mounted):
    """ps computes a process's age from /proc/uptime and its start time: bound from a live
    mount, the age stays the host's."""
    need("procps", "ps")
    mnt = mounted(LIVE)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(1.2)
        inside = pseudofs_exec(mnt, "ps", "-o", "etimes=", "-p", str(sleeper.pid)).stdout
        outside = subprocess.run(["ps", "-o", "etimes=", "-p", str(sleeper.pid)],
                                 capture_output=True, text=True, check=True).stdout
    finally:
        sleeper.kill()
        sleeper.wait()
    assert abs(int(inside) - int(outside)) <= 1 and int(inside) >= 1, (inside, outside)
