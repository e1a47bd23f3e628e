"""Fault plans on a live mount: every action and trigger checked with exact bytes and errnos
through cat, dd bs=1, Python and one os.read of 4096, the comm filter, determinism of the
fault log, the model untouched by a plan without torn, and a refused plan keeping the old one.
Expected bytes always come from the model: the same file read with no plan, or the same
commands run on a second mount of the same configuration."""

import errno
import os
import subprocess
import time

import pytest

from pseudofs.cli import walk
from pseudofs.faults import mutate

CTL = "sys/kernel/debug/percpu_test/"
MEMINFO = "proc/meminfo"
STAT = "sys/fs/cgroup/app/memory.stat"


def path(mnt, rel):
    return os.path.join(mnt, rel)


def write_once(mnt, rel, text):
    """One write(2), as echo does (Python's buffered close would retry a refused write)."""
    fd = os.open(path(mnt, rel), os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def plan(mnt, text):
    write_once(mnt, CTL + "faults", text)


def clear(mnt):
    plan(mnt, "clear\n")


def raw(mnt, rel) -> bytes:
    with open(path(mnt, rel), "rb") as f:
        return f.read()


def read_4096(mnt, rel) -> bytes:
    """What a C reader gets from one read(fd, buf, 4096)."""
    fd = os.open(path(mnt, rel), os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def cat(mnt, rel, prog="cat"):
    return subprocess.run([prog, path(mnt, rel)], capture_output=True, timeout=30)


def dd1(mnt, rel):
    return subprocess.run(["dd", "if=" + path(mnt, rel), "bs=1", "status=none"],
                          capture_output=True, timeout=60)


def log_lines(mnt):
    return raw(mnt, CTL + "fault_log").decode().splitlines()


def test_errno_on_read_open_getattr_readdir_and_write(mounted):
    mnt = mounted()
    before = raw(mnt, MEMINFO)
    plan(mnt, "rules:\n  - {path: proc/meminfo, errno: EIO}\n"
              "  - {path: sys/fs/cgroup/app/memory.current, op: open, errno: ENOENT}\n"
              "  - {path: sys/fs/cgroup/app/memory.max, op: getattr, errno: ENOENT}\n"
              "  - {path: sys/fs/cgroup/batch, op: readdir, errno: ENODEV}\n"
              "  - {path: " + CTL + "alloc, op: write, errno: ENOMEM}\n")
    r = cat(mnt, MEMINFO)
    assert r.returncode == 1 and b"Input/output error" in r.stderr and r.stdout == b""
    with pytest.raises(OSError) as e:
        read_4096(mnt, MEMINFO)
    assert e.value.errno == errno.EIO
    # the vanishing cgroup: listed, but open says ENOENT
    assert "memory.current" in os.listdir(path(mnt, "sys/fs/cgroup/app"))
    with pytest.raises(OSError) as e:
        open(path(mnt, "sys/fs/cgroup/app/memory.current"), "rb")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        os.stat(path(mnt, "sys/fs/cgroup/app/memory.max"))
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        os.listdir(path(mnt, "sys/fs/cgroup/batch"))
    assert e.value.errno == errno.ENODEV
    listing = raw(mnt, "sys/kernel/debug/percpu_stats")
    with pytest.raises(OSError) as e:
        write_once(mnt, CTL + "alloc", "size=64 count=10 cgroup=/app\n")
    assert e.value.errno == errno.ENOMEM
    assert raw(mnt, "sys/kernel/debug/percpu_stats") == listing      # the model did not move
    shown = raw(mnt, CTL + "faults").decode()
    assert shown.count("hits: 2") == 1 and shown.count("hits: 1") == 4   # cat, os.read
    clear(mnt)
    assert raw(mnt, MEMINFO) == before
    assert [ln.split()[1:3] for ln in log_lines(mnt)] == [
        ["read", "/proc/meminfo"], ["read", "/proc/meminfo"],
        ["open", "/sys/fs/cgroup/app/memory.current"], ["getattr", "/sys/fs/cgroup/app/memory.max"],
        ["readdir", "/sys/fs/cgroup/batch"], ["write", "/" + CTL + "alloc"]]


def test_enodev_on_read_after_a_good_open(mounted):
    mnt = mounted()
    plan(mnt, "rules: [{path: sys/fs/cgroup/app/*, errno: ENODEV}]\n")
    fd = os.open(path(mnt, STAT), os.O_RDONLY)      # open is not faulted: op read
    try:
        with pytest.raises(OSError) as e:
            os.read(fd, 4096)
        assert e.value.errno == errno.ENODEV
    finally:
        os.close(fd)


def test_short_read_every_read(mounted):
    mnt = mounted()
    whole = raw(mnt, MEMINFO)
    plan(mnt, "rules: [{path: proc/meminfo, short_read: 100}]\n")
    assert read_4096(mnt, MEMINFO) == whole[:100]
    assert cat(mnt, MEMINFO).stdout == whole            # cat reads on to EOF
    assert dd1(mnt, MEMINFO).stdout == whole
    assert raw(mnt, MEMINFO) == whole                   # Python's read() loops too
    fd = os.open(path(mnt, MEMINFO), os.O_RDONLY)
    try:
        assert [len(os.read(fd, 4096)) for _ in range(3)] == [100, 100, 100]
    finally:
        os.close(fd)


def test_short_first_read(mounted):
    mnt = mounted()
    whole = raw(mnt, MEMINFO)
    plan(mnt, "rules: [{path: proc/meminfo, first: 1, short_read: 64}]\n")
    fd = os.open(path(mnt, MEMINFO), os.O_RDONLY)
    try:
        assert os.read(fd, 4096) == whole[:64]          # a one-read parser sees half a line
        assert os.read(fd, 4096) == whole[64:4096 + 64]
    finally:
        os.close(fd)
    assert read_4096(mnt, MEMINFO) == whole[:4096]      # first: 1 fired already


@pytest.mark.parametrize("trigger, faulted", [
    ("nth: 2", [2]), ("first: 2", [1, 2]), ("after: 3", [4, 5]), ("every: 2", [2, 4]),
])
def test_triggers_count_matching_calls(mounted, trigger, faulted):
    mnt = mounted()
    plan(mnt, "rules: [{path: proc/vmstat, %s, errno: EAGAIN}]\n" % trigger)
    got = []
    for n in range(1, 6):
        try:
            read_4096(mnt, "proc/vmstat")
        except OSError as e:
            assert e.errno == errno.EAGAIN
            got.append(n)
    assert got == faulted
    assert ("hits: %d" % len(faulted)) in raw(mnt, CTL + "faults").decode()


def test_delay(mounted):
    mnt = mounted()
    plan(mnt, "rules: [{path: proc/stat, delay_ms: 300}]\n")
    t = time.monotonic()
    data = read_4096(mnt, "proc/stat")
    assert time.monotonic() - t >= 0.3
    clear(mnt)
    assert data == read_4096(mnt, "proc/stat")


def test_mutate_on_cat_dd_and_python(mounted):
    mnt = mounted()
    whole = raw(mnt, MEMINFO)
    plan(mnt, "rules:\n  - path: proc/meminfo\n    mutate:\n"
              "      - set: {KernelStack: 10000000}\n      - squeeze: KernelStack\n"
              "      - blank_line: after MemFree\n      - drop_key: Percpu\n")
    want = mutate.drop_key(mutate.blank_line(mutate.squeeze(mutate.set_value(
        whole, "KernelStack", "10000000"), "KernelStack"), "after MemFree"), "Percpu")
    assert want != whole and b"\nKernelStack:10000000 kB\n" in want and b"Percpu" not in want
    assert cat(mnt, MEMINFO).stdout == want
    assert dd1(mnt, MEMINFO).stdout == want
    assert raw(mnt, MEMINFO) == want
    assert read_4096(mnt, MEMINFO) == want[:4096]


@pytest.mark.parametrize("edit, fn", [
    ("replace: max", lambda b: b"max\n"), ("empty", lambda b: b""),
    ("whitespace_only", lambda b: b"\n"), ("no_final_newline", lambda b: b[:-1]),
    ("set: {'': 18446744073709551615}", None),
])
def test_single_value_files(mounted, fuse_log, edit, fn):
    mnt = mounted()
    rel = "sys/fs/cgroup/app/memory.max"
    whole = raw(mnt, rel)
    if fn is None:        # a key-less file takes replace:, an empty key is refused
        with pytest.raises(OSError) as e:
            plan(mnt, "rules: [{path: %s, mutate: [%s]}]\n" % (rel, edit))
        assert e.value.errno == errno.EINVAL and "is not a key" in fuse_log.pop()[0]
        return
    plan(mnt, "rules: [{path: %s, mutate: [%s]}]\n" % (rel, edit))
    assert cat(mnt, rel).stdout == fn(whole)


def test_comm_filter_hits_one_program_and_spares_another(mounted):
    mnt = mounted()
    whole = raw(mnt, MEMINFO)
    plan(mnt, "rules: [{path: proc/meminfo, comm: cat, errno: EIO}]\n")
    assert cat(mnt, MEMINFO).returncode == 1
    r = subprocess.run(["head", "-c", "100000", path(mnt, MEMINFO)], capture_output=True)
    assert r.returncode == 0 and r.stdout == whole
    assert raw(mnt, MEMINFO) == whole                   # this Python process is spared too
    (line,) = log_lines(mnt)
    assert line.split()[4] == "cat" and line.endswith("rule=1 errno=EIO")


def _torn_plan(n):
    return ("rules:\n  - {path: %s, short_read: %d}\n"
            "  - {path: %s, torn: alloc size=4096 count=50 cgroup=/app}\n"
            % (STAT, n, STAT))


def test_torn_read_chunks_come_from_the_file_as_it_is_then(mounted):
    n = 300
    mnt, twin = mounted(name="faulty"), mounted(name="twin")
    # the twin runs the same commands with no plan: the file after each of them
    renders = [raw(twin, STAT)]
    plan(mnt, _torn_plan(n))
    got = raw(mnt, STAT)                                # Python reads in chunks of n
    k = -(-len(got) // n) + 1                           # chunks served, and the EOF read
    for _ in range(k):
        write_once(twin, CTL + "alloc", "size=4096 count=50 cgroup=/app\n")
        renders.append(raw(twin, STAT))
    want = b"".join(renders[i][i * n:(i + 1) * n] for i in range(k))
    assert got == want
    assert renders[0] != renders[-1] and got != renders[0] and got != renders[-1]
    clear(mnt)
    assert raw(mnt, STAT) == renders[k]                 # the model really moved, k times
    assert raw(mnt, "sys/kernel/debug/percpu_stats") == raw(twin, "sys/kernel/debug/percpu_stats")


def _sequence(mnt):
    for _ in range(3):
        cat(mnt, MEMINFO)
        try:
            read_4096(mnt, "proc/vmstat")
        except OSError:
            pass
        dd1(mnt, "sys/fs/cgroup/app/memory.max")
        try:
            open(path(mnt, STAT), "rb").close()
        except OSError:
            pass
    return [" ".join(ln.split()[:3] + ln.split()[4:]) for ln in log_lines(mnt)]   # no pid


DETERMINISTIC = """seed: 11
rules:
  - {path: proc/*, probability: 0.5, errno: EIO}
  - {path: sys/fs/cgroup/**, op: open, every: 2, errno: ENOENT}
  - {path: sys/fs/cgroup/app/memory.max, probability: 0.3, short_read: 1}
  - {path: proc/meminfo, nth: 2, mutate: [empty]}
"""


def test_same_plan_same_calls_same_fault_log(mounted):
    logs = []
    for name in ("one", "two"):
        mnt = mounted(name=name)
        plan(mnt, DETERMINISTIC)
        logs.append(_sequence(mnt))
    assert logs[0] == logs[1] and len(logs[0]) > 6
    assert any("errno=EIO" in ln for ln in logs[0]) and any("short_read" in ln for ln in logs[0])


def test_a_plan_without_torn_leaves_the_model_alone(mount_tree):
    from conftest import build_model_tree
    tree = build_model_tree(None)
    skip = ("/" + CTL + "faults", "/" + CTL + "fault_log")
    before = [(p, d) for p, d in walk(tree) if p not in skip]
    mnt = mount_tree(tree)
    plan(mnt, DETERMINISTIC + "  - {path: '**', op: write, errno: EBUSY}\n"
              "  - {path: sys/fs/cgroup/**, short_read: 7}\n")
    _sequence(mnt)
    with pytest.raises(OSError):
        write_once(mnt, CTL + "alloc", "size=64 count=10 cgroup=/app\n")
    clear(mnt)
    assert [(p, d) for p, d in walk(tree) if p not in skip] == before


def test_a_bad_plan_is_refused_and_the_old_one_kept(mounted, fuse_log):
    mnt = mounted()
    plan(mnt, "seed: 2\nrules: [{path: proc/stat, errno: EIO}]\n")
    old = raw(mnt, CTL + "faults")
    with pytest.raises(OSError) as e:
        plan(mnt, "rules:\n  - {path: proc/stat, errno: EIO}\n  - {path: x, op: read, nth: -1,"
                  " errno: EIO}\n")
    assert e.value.errno == errno.EINVAL
    (msg,) = fuse_log.pop()
    assert "plan refused" in msg and "rule 2: nth" in msg
    assert raw(mnt, CTL + "faults") == old
    assert cat(mnt, "proc/stat").returncode == 1        # still live
    mode = os.stat(path(mnt, CTL + "faults")).st_mode & 0o777
    assert (mode, os.stat(path(mnt, CTL + "fault_log")).st_mode & 0o777) == (0o600, 0o400)


def test_a_long_comm_warns_in_the_log(mounted, fuse_log):
    mnt = mounted()
    plan(mnt, "rules: [{path: proc/stat, comm: prometheus-node-exporter, errno: EIO}]\n")
    (msg,) = fuse_log.pop()
    assert "compared as 'prometheus-node'" in msg


def test_a_plan_and_its_torn_commands_are_recorded_in_state(daemons, tmp_path):
    from daemon_util import pfs
    mnt, state = str(tmp_path / "mnt"), str(tmp_path / "state")
    daemons.mount(mnt, "--state", state)
    plan(mnt, _torn_plan(2000))
    torn = raw(mnt, STAT)                                   # a torn alloc after each read
    shown, after = raw(mnt, CTL + "faults"), raw(mnt, "sys/kernel/debug/percpu_stats")
    reads = int(shown.split(b"hits: ")[1].split()[0])    # the reads Python made, EOF's too
    assert reads >= 2 and shown.count(b"hits: %d" % reads) == 2
    assert pfs("umount", mnt).returncode == 0
    daemons.mount(mnt, "--state", state)                    # replayed: the plan is live again
    assert raw(mnt, "sys/kernel/debug/percpu_stats") == after   # the allocs, not re-run
    assert raw(mnt, CTL + "faults") == shown.replace(b"hits: %d" % reads, b"hits: 0")
    assert raw(mnt, STAT) != torn                           # torn again, from the new state


def test_the_config_faults_section_is_live_at_mount(mounted):
    from pseudofs.config import DEFAULT_YAML
    mnt = mounted(DEFAULT_YAML + "\nfaults:\n  rules:\n    - {path: proc/vmstat, nth: 2, "
                  "errno: EAGAIN}\n")
    read_4096(mnt, "proc/vmstat")
    with pytest.raises(OSError) as e:
        read_4096(mnt, "proc/vmstat")
    assert e.value.errno == errno.EAGAIN       # (Python retries EINTR itself: PEP 475)
    assert b"hits: 1" in raw(mnt, CTL + "faults")
