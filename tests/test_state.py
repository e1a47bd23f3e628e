"""`pseudofs mount --state FILE`: kill -9 the daemon, mount again, and every file reads back
byte for byte (history included); damaged state files are refused with the file and the byte
offset, a torn last record is dropped with a warning; one daemon per state file; stale mounts.
"""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from daemon_util import REPO, STALE, diff, fstype, pfs, wait_until
from helpers import errno_of, three_nodes, walk as render_mount, write_errno
from pseudofs.errors import ModelError
from pseudofs.fs import statelog
from pseudofs.model.state import digest

CONFIG = """\
kernel: {accounting: per-node, clock: frozen}   # restarts compare every file
""" + three_nodes("1G") + """\
cgroups:
  - path: /app
    subtree_control: [memory]
    memory.max: 64M
    allocations:
      - {size: 64, count: 100, tag: warm}
  - path: /app/a
"""

PCT = "/sys/kernel/debug/percpu_test"
CG = "/sys/fs/cgroup"


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return str(path)


def w(path, data, want=0):
    got = write_errno(path, data.encode() if isinstance(data, str) else data)
    assert got == want, "%s <- %r: %s, expected %s" % (path, data, errno.errorcode.get(got, got),
                                                      errno.errorcode.get(want, want))


def history_round(mnt, r, sleeper_pid):
    """Commands whose effects depend on history: stocks, peaks, events, chunks, hotplug,
    reparenting, ownership, membership (host facts), automatic tags."""
    A, F, cg = mnt + PCT + "/alloc", mnt + PCT + "/free", mnt + CG
    os.mkdir("%s/r%d" % (cg, r))
    w(A, "size=%d count=%d cgroup=/r%d tag=r%da" % (64 * (r + 1), 50 + r, r, r))
    w(A, "size=8 count=7 cgroup=/app/a")                              # an automatic tag
    w("%s/r%d/memory.max" % (cg, r), "64K")
    w(A, "size=4096 count=100 cgroup=/r%d" % r, errno.ENOMEM)          # counts max and oom
    w(A, "size=8 count=1 cgroup=/nowhere", errno.ENOENT)               # changes nothing
    w("%s/r%d/memory.max" % (cg, r), "max")
    fd = os.open(cg + "/app/memory.peak", os.O_RDWR)                  # resets the local peak
    os.write(fd, b"reset")
    os.close(fd)
    w(F, "tag=r%da count=3" % r)
    w(mnt + "/sys/devices/system/cpu/cpu%d/online" % (1 + r % 3), "0")
    w(A, "size=16 count=9 cgroup=/r%d" % r)                            # with a CPU offline
    if r % 2:
        w(mnt + "/sys/devices/system/cpu/cpu%d/online" % (1 + r % 3), "1")
    os.chown("%s/r%d" % (cg, r), 1000 + r, 2000 + r)
    os.chmod("%s/r%d/cgroup.procs" % (cg, r), 0o664)
    w("%s/r%d/cgroup.procs" % (cg, r), str(sleeper_pid))               # a live process moves
    # a short-lived shell joins /app/a and allocates without cgroup=: the writer's cgroup
    subprocess.run(["sh", "-c", "echo 0 > %s/app/a/cgroup.procs && echo 'size=32 count=5' > %s"
                    % (cg, A)], check=True)
    if r >= 1:
        os.rmdir("%s/r%d" % (cg, r - 1))                               # reparents its objects
    w(cg + "/app/cgroup.max.descendants", str(10 + r))
    w(cg + "/app/a/cgroup.freeze", str(r % 2))


def test_kill9_and_restart_render_byte_for_byte(daemons, cfg, tmp_path, sleeper):
    mnt, state = str(tmp_path / "mnt"), str(tmp_path / "state")
    r, pid = daemons.mount(mnt, "-c", cfg, "--state", state)
    restarts = 0
    for rnd in range(5):
        history_round(mnt, rnd, sleeper.pid)
        before = render_mount(mnt)
        daemons.kill9(pid)
        assert errno_of(os.stat, mnt) in STALE
        if rnd % 2:                               # umount clears the stale mount ...
            u = pfs("umount", mnt)
            assert u.returncode == 0 and "stale mount" in u.stderr, u.stderr
            assert fstype(mnt) is None
            r, pid = daemons.mount(mnt, "--state", state)
            assert r.stderr == ""
        else:                                     # ... and so does mounting over it
            r, pid = daemons.mount(mnt, "--state", state)
            assert "stale mount" in r.stderr
        restarts += 1
        after = render_mount(mnt)
        assert before == after, diff(before, after)
    # the state is the history: a restart changed nothing, the next command continues it
    w(mnt + PCT + "/alloc", "size=8 count=1 cgroup=/app")
    assert "tag=t" in open(mnt + PCT + "/alloc").read()
    assert restarts == 5
    print("restarts: %d, each comparing %d files byte for byte (and %d listings and "
          "attributes)" % (restarts, sum(1 for k in after if not k.endswith(("@", "/"))),
                           sum(1 for k in after if k.endswith(("@", "/")))))


WRITER = textwrap.dedent("""\
    import errno, os, sys
    mnt, acked = sys.argv[1], sys.argv[2]
    sys.path.insert(0, {tests!r})
    from test_state import stream_commands
    out = open(acked, "w", buffering=1)
    for i, (rel, data, want) in enumerate(stream_commands()):
        try:
            fd = os.open(mnt + rel, os.O_WRONLY)
            try:
                os.write(fd, data.encode())
                got = 0
            except OSError as e:
                got = e.errno
            finally:
                os.close(fd)
        except OSError as e:
            got = e.errno
        if got in (errno.ENOTCONN, errno.ECONNABORTED, errno.ENOENT) and got != want:
            break                                   # the daemon is gone
        assert got == want, (i, rel, data, got, want)
        out.write("%d\\n" % (i + 1))                # acknowledged
""")


def stream_commands(n=1200):
    """A deterministic stream: (path, data, expected errno)."""
    out = []
    for i in range(n):
        k = i % 12
        if k == 0:
            out.append((CG + "/app/a/memory.max", "%dK" % (65536 + i), 0))
        if k == 5:                                  # over /app's 64M: ENOMEM, events counted
            out.append((PCT + "/alloc", "size=32K count=1000 cgroup=/app/a", errno.ENOMEM))
        elif k == 9 and i > 12:
            out.append((PCT + "/free", "tag=s%d count=1" % (i - 9), 0))
        else:
            out.append((PCT + "/alloc", "size=%d count=%d cgroup=/app/a tag=s%d"
                        % (4 * (1 + i % 37), 1 + i % 5, i), 0))
    return out


def test_kill9_in_a_stream_of_allocations_loses_nothing_acknowledged(daemons, cfg, tmp_path):
    from pseudofs.fs.routes import build_tree
    from pseudofs.cli import walk
    from pseudofs.config import parse_config
    from pseudofs.fs.tree import Caller, OpenFile
    from pseudofs.model.procs import NoHost

    mnt, state, acked = str(tmp_path / "mnt"), str(tmp_path / "state"), tmp_path / "acked"
    r, pid = daemons.mount(mnt, "-c", cfg, "--state", state)
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=os.path.dirname(__file__)))
    writer = subprocess.Popen([sys.executable, str(script), mnt, str(acked)],
                              env=dict(os.environ, PYTHONPATH=REPO))
    n_cmds = len(stream_commands())
    wait_until(lambda: writer.poll() is not None or
               (acked.exists() and len(acked.read_text().split()) >= n_cmds // 3),
               timeout=120, what="a third of the stream")
    assert writer.poll() is None, "the writer stopped early"
    daemons.kill9(pid)
    assert writer.wait(60) == 0
    done = int(acked.read_text().split()[-1])
    assert n_cmds // 3 <= done < n_cmds
    r, pid = daemons.mount(mnt, "--state", state)
    got = render_mount(mnt)

    def expected(k):
        """The model after the first k commands of the stream, rendered as the mount does."""
        # named as the state file records it: percpu_test/check's header names the config
        tree = build_tree(parse_config(CONFIG, cfg), NoHost())
        for rel, data, want in stream_commands()[:k]:
            try:
                tree.write(OpenFile(rel, os.O_WRONLY, Caller()), data.encode())
                assert want == 0, (rel, data)
            except ModelError as e:
                assert e.errno == want, (rel, data)
        return {p: v for p, v in walk(tree) if not p.startswith("/proc/")}

    mine = {k: v for k, v in got.items() if not k.endswith(("@", "/"))
            and not k.startswith("/proc/")}
    # the command in flight when the daemon died may or may not have been recorded; every
    # acknowledged one was
    candidates = [expected(done), expected(done + 1)]
    assert mine in candidates, diff(candidates[0], mine)
    print("stream: %d of %d writes acknowledged before kill -9; state matches after %s"
          % (done, n_cmds, "exactly them" if mine == candidates[0] else "one more (in flight)"))


# --- damaged state files -----------------------------------------------------------------------
def _make_state(path, n=5):
    """A state file with a header and n alloc records; returns the record offsets."""
    from pseudofs.fs.tree import Caller, OpenFile
    t = statelog.open_state(str(path), CONFIG, "c.yaml")
    for i in range(n):
        t.write(OpenFile(PCT + "/alloc", os.O_WRONLY, Caller()),
                b"size=64 count=10 cgroup=/app tag=x%d" % i)
    t.close()
    parsed = statelog.parse(str(path), path.read_bytes())
    return [off for off, _ in parsed.records]


def _tags(tree):
    return [g["tag"] for g in tree.model.groups.listing()]


def test_torn_last_record_is_dropped_with_a_warning(tmp_path):
    path = tmp_path / "state"
    offsets = _make_state(path)
    good = path.read_bytes()
    for cut in (1, 7, 22, 23, 40, len(good) - offsets[-1] - 1):    # inside the last record
        path.write_bytes(good[:len(good) - cut])
        warnings = []
        t = statelog.open_state(str(path), None, "c.yaml", warn=warnings.append)
        assert _tags(t) == ["warm", "x0", "x1", "x2", "x3"]
        t.close()
        assert len(warnings) == 1 and "torn" in warnings[0]
        assert "byte offset %d" % offsets[-1] in warnings[0]
        assert path.read_bytes() == good[:offsets[-1]]           # cut off the file
    # zeros a crash left after the last record: dropped too
    path.write_bytes(good + b"\0" * 100)
    warnings = []
    t = statelog.open_state(str(path), None, "c.yaml", warn=warnings.append)
    assert _tags(t)[-1] == "x4" and "torn" in warnings[0]
    t.close()
    assert path.read_bytes() == good


@pytest.mark.parametrize("damage", ["payload", "length", "magic", "middle-garbage", "header",
                                    "replays-differently", "not-json"])
def test_damaged_state_is_refused_with_file_and_offset(tmp_path, damage):
    path = tmp_path / "state"
    offsets = _make_state(path)
    data = bytearray(path.read_bytes())
    where = offsets[2]
    if damage == "payload":
        data[where + 40] ^= 0x01
    elif damage == "length":
        data[where + 3] = ord("f")
    elif damage == "magic":
        data[0:8], where = b"xxxxxxxx", 0
    elif damage == "middle-garbage":
        data[where:where] = b"garbage\n"
    elif damage == "header":
        where = len(statelog.MAGIC)
        data[where + 30] ^= 0x20
    elif damage == "replays-differently":           # a valid record the model refuses
        rec = dict(statelog.parse(str(path), bytes(data)).records[2][1], errno=0,
                   data="c2l6ZT0w")                # "size=0": EINVAL, recorded as success
        data[where:offsets[3]] = statelog.encode_record(rec)
    elif damage == "not-json":
        data[where:offsets[3]] = _raw_record(b"[1, 2")
    path.write_bytes(bytes(data))
    with pytest.raises(statelog.StateError) as e:
        statelog.open_state(str(path), None, "c.yaml")
    msg = str(e.value)
    assert str(path) in msg and "byte offset %d" % where in msg, msg
    assert path.read_bytes() == bytes(data)         # refused, untouched


def _raw_record(payload: bytes) -> bytes:
    import zlib
    head = b"%08x %08x" % (len(payload), zlib.crc32(payload))
    return head + b" %04x\n" % (zlib.crc32(head) & 0xffff) + payload + b"\n"


def test_cli_refuses_a_damaged_state_and_warns_about_a_torn_one(daemons, tmp_path):
    mnt, path = str(tmp_path / "mnt"), tmp_path / "state"
    offsets = _make_state(path)
    good = path.read_bytes()
    bad = bytearray(good)
    bad[offsets[1] + 30] ^= 0x04
    path.write_bytes(bytes(bad))
    r, pid = daemons.mount(mnt, "--state", path, expect=1)
    assert "byte offset %d" % offsets[1] in r.stderr and str(path) in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert fstype(mnt) is None and path.read_bytes() == bytes(bad)
    path.write_bytes(good[:-10])                     # torn: the last record was being written
    r, pid = daemons.mount(mnt, "--state", path)
    assert "pseudofs: warning:" in r.stderr and "torn" in r.stderr, r.stderr
    assert "byte offset %d" % offsets[-1] in r.stderr
    listing = open(mnt + PCT + "/alloc").read()
    assert "tag=x3 " in listing and "tag=x4 " not in listing
    w(mnt + PCT + "/alloc", "size=8 cgroup=/app tag=after")      # appends after the cut
    daemons.kill9(pid)
    r, pid = daemons.mount(mnt, "--state", path)
    assert r.stderr.count("warning") == 0 and "tag=after " in open(mnt + PCT + "/alloc").read()


def test_one_daemon_per_state_file_and_a_killed_ones_lock_is_recovered(daemons, cfg, tmp_path):
    state = str(tmp_path / "state")
    r, pid = daemons.mount(tmp_path / "a", "-c", cfg, "--state", state)
    r2, _ = daemons.mount(tmp_path / "b", "--state", state, expect=1)
    assert "in use by another pseudofs daemon (pid %d)" % pid in r2.stderr, r2.stderr
    assert fstype(tmp_path / "b") is None
    daemons.kill9(pid)
    r3, pid3 = daemons.mount(tmp_path / "b", "--state", state)     # the lock died with it
    assert pid3 != pid


def test_state_wins_over_the_config(daemons, cfg, tmp_path):
    mnt, state = str(tmp_path / "mnt"), str(tmp_path / "state")
    r, pid = daemons.mount(mnt, "-c", cfg, "--state", state)
    w(mnt + PCT + "/free", "tag=warm")
    daemons.kill9(pid)
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.replace("count: 100, tag: warm", "count: 5, tag: cold"))
    r, pid = daemons.mount(mnt, "-c", other, "--state", state)
    assert "recorded configuration" in r.stderr and str(other) in r.stderr
    listing = open(mnt + PCT + "/alloc").read()
    assert "warm" not in listing and "cold" not in listing    # applied once, then freed
    header = statelog.parse(state, open(state, "rb").read()).header
    assert header["config_yaml"] == CONFIG and header["config_source"] == cfg


def test_a_bad_config_for_a_new_state_is_refused_before_detaching(daemons, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kernel: {page_size: 3}\n")
    r, _ = daemons.mount(tmp_path / "mnt", "-c", bad, "--state", tmp_path / "state", expect=2)
    assert "page_size" in r.stderr
    assert not (tmp_path / "state").exists()


def test_refused_writes_are_recorded_with_their_errno_and_replay_the_same(tmp_path):
    from pseudofs.fs.tree import Caller, OpenFile
    path = tmp_path / "state"
    t = statelog.open_state(str(path), CONFIG, "c.yaml")
    size = path.stat().st_size
    for data in (b"bogus", b"size=0", b"size=8 cgroup=/nowhere", b"size=8 tag=warm"):
        with pytest.raises(Exception) as e:
            t.write(OpenFile(PCT + "/alloc", os.O_WRONLY, Caller()), data)
        assert e.value.errno in (errno.EINVAL, errno.ENOENT, errno.EEXIST)
    assert path.stat().st_size > size
    t.write(OpenFile(CG + "/app/a/memory.max", os.O_WRONLY, Caller()), b"0")
    with pytest.raises(Exception) as e:                      # refused, but counts events
        t.write(OpenFile(PCT + "/alloc", os.O_WRONLY, Caller()), b"size=8 cgroup=/app/a")
    assert e.value.errno == errno.ENOMEM
    recs = statelog.parse(str(path), path.read_bytes()).records
    assert [r["errno"] for _, r in recs] == [
        errno.EINVAL, errno.EINVAL, errno.ENOENT, errno.EEXIST, 0, errno.ENOMEM]
    live = digest(t.model)
    t.close()
    again = statelog.open_state(str(path), None, "c.yaml")    # replays every refusal alike
    assert digest(again.model) == live
    again.close()


def test_stale_mount_is_recovered_by_mount_and_cleared_by_umount(daemons, cfg, tmp_path):
    mnt = str(tmp_path / "mnt")
    r, pid = daemons.mount(mnt, "-c", cfg)
    daemons.kill9(pid)
    assert errno_of(os.listdir, mnt) in STALE            # "Transport endpoint is not connected"
    r, pid = daemons.mount(mnt, "-c", cfg)                # mounting over it recovers it
    assert "the daemon is gone" in r.stderr and "clearing the stale mount" in r.stderr
    assert "Percpu:" in open(mnt + "/proc/meminfo").read()
    daemons.kill9(pid)
    u = pfs("umount", mnt)                                 # and umount clears it
    assert u.returncode == 0 and "clearing the stale mount" in u.stderr, u.stderr
    assert fstype(mnt) is None and os.listdir(mnt) == []
    u = pfs("umount", mnt)
    assert u.returncode == 1 and "is not mounted" in u.stderr
