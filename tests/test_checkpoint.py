"""Checkpoints of the state file (pseudofs/fs/checkpoint.py): a mount restored from a checkpoint
plus its tail reads back byte for byte; the file is compacted; a damaged checkpoint is refused
with the file and the byte offset; a checkpoint that cannot be written leaves a good log.
"""

import base64
import os
import pickle
import sys
import threading
import time
import zlib

import pytest

from daemon_util import REPO, STALE, diff
from helpers import errno_of, walk as render_mount
from test_state import CONFIG, PCT, CG, history_round
from pseudofs.cli import walk
from pseudofs.fs import checkpoint, statelog
from pseudofs.fs.tree import Caller, OpenFile


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return str(path)


def _write(t, path, data):
    of = OpenFile(path, os.O_WRONLY, Caller())
    try:
        t.write(of, data)
    finally:
        t.release(of)


def _records(path):
    return statelog.parse(str(path), open(path, "rb").read()).records


def test_restart_from_checkpoint_and_tail_renders_byte_for_byte(  # noqa: F811 (fixtures)
        daemons, cfg, tmp_path, sleeper, monkeypatch):
    monkeypatch.setenv(checkpoint.ENV, "9")       # the daemon checkpoints every 9 records
    mnt, state = str(tmp_path / "mnt"), str(tmp_path / "state")
    r, pid = daemons.mount(mnt, "-c", cfg, "--state", state)
    commands = []
    for rnd in range(3):
        history_round(mnt, rnd, sleeper.pid)
        before = render_mount(mnt)
        recs = _records(state)
        assert checkpoint.is_checkpoint(recs[0][1]) and len(recs) <= 9, len(recs)
        commands.append(recs[0][1]["commands"] + len(recs) - 1)
        daemons.kill9(pid)
        assert errno_of(os.stat, mnt) in STALE
        r, pid = daemons.mount(mnt, "--state", state)
        after = render_mount(mnt)
        assert before == after, diff(before, after)
    assert commands[0] < commands[1] < commands[2]           # the history goes on
    assert not os.path.exists(state + ".tmp")
    os.chmod(state, 0o640)
    os.chown(state, 1234, 5678)                      # a compaction keeps them
    for i in range(10):
        with open(mnt + PCT + "/alloc", "w") as f:
            f.write("size=8 count=1 cgroup=/app tag=m%d" % i)
    assert checkpoint.is_checkpoint(_records(state)[0][1]) and len(_records(state)) < 10
    st = os.stat(state)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    print("3 restarts from a checkpoint of %s commands plus a tail, %d files each byte for byte"
          % (commands, sum(1 for k in after if not k.endswith(("@", "/")))))


def _state(tmp_path, n=10, every="4"):
    """A state file of n alloc commands checkpointed every `every` records, and the live tree's
    render before it was closed."""
    path = tmp_path / "state"
    os.environ[checkpoint.ENV] = every
    try:
        t = statelog.open_state(str(path), CONFIG, "c.yaml")
        _write(t, CG + "/app/a/memory.max", b"1M")
        for i in range(n):
            _write(t, PCT + "/alloc", b"size=%d count=%d cgroup=/app/a tag=x%d"
                   % (8 << (i % 5), 1 + i, i))
        _write(t, PCT + "/free", b"tag=x3")
        _write(t, "/sys/devices/system/cpu/cpu1/online", b"0")
        rendered = dict(walk(t.tree))
        t.close()
    finally:
        del os.environ[checkpoint.ENV]
    return path, rendered


def test_checkpoint_plus_tail_round_trip_in_process(tmp_path):
    path, before = _state(tmp_path)
    recs = _records(path)
    assert checkpoint.is_checkpoint(recs[0][1]) and recs[0][1]["commands"] == 12
    assert len(recs) == 1 + 1                        # 13 records: checkpoints at 4, 8, 12
    t = statelog.open_state(str(path), None, "c.yaml")
    after = dict(walk(t.tree))
    t.close()
    assert before == after, diff(before, after)
    # and the same commands as a full log, without checkpoints, give the same files
    full = tmp_path / "full"
    os.mkdir(full)
    _, without = _state(full, every="0")
    assert not any(checkpoint.is_checkpoint(r) for _, r in _records(full / "state"))
    assert without == after, diff(without, after)


def test_serialize_round_trip_renders_identically():
    from pseudofs.fs.routes import build_tree
    from pseudofs.config import DEFAULT_YAML, parse_config
    from pseudofs.fs.routes import Routes
    from pseudofs.model.procs import NoHost
    t = build_tree(parse_config(DEFAULT_YAML), NoHost())
    _write(t, PCT + "/alloc", b"size=128 count=40 cgroup=/app/web")
    of = OpenFile(CG + "/app/memory.peak", os.O_RDWR, Caller())
    t.write(of, b"reset")                            # an open file's own peak value
    blob = checkpoint.serialize(t.model)
    copy = Routes(checkpoint.deserialize(blob), NoHost())
    t.release(of)                                    # as every file is closed by a restart
    assert dict(walk(t)) == dict(walk(copy))
    for tree in (t, copy):                           # and both go on the same way
        _write(tree, PCT + "/alloc", b"size=64 count=9 cgroup=/app tag=next")
        _write(tree, "/sys/devices/system/cpu/cpu5/online", b"0")
        _write(tree, PCT + "/free", b"tag=web count=7")
    assert dict(walk(t)) == dict(walk(copy))


def _evil_pickle():
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/pseudofs-evil",))
    return pickle.dumps(Evil(), protocol=5)


def _rewrite_checkpoint(path, **fields):
    data = bytearray(path.read_bytes())
    recs = _records(path)
    off, rec = recs[0]
    end = recs[1][0] if len(recs) > 1 else len(data)
    rec = dict(rec, **fields)
    data[off:end] = statelog.encode_record(rec)
    path.write_bytes(bytes(data))
    return off


@pytest.mark.parametrize("damage", ["bit-flip", "sha256", "other-code", "foreign-global",
                                    "not-base64", "second-checkpoint"])
def test_damaged_checkpoint_is_refused_with_file_and_offset(tmp_path, damage):
    path, _ = _state(tmp_path)
    off = _records(path)[0][0]
    if damage == "bit-flip":                        # the record's CRC catches it
        data = bytearray(path.read_bytes())
        data[off + 500] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "sha256":                        # a valid record whose model was altered
        rec = _records(path)[0][1]
        blob = bytearray(zlib.decompress(base64.b64decode(rec["model"])))
        blob[len(blob) // 2] ^= 0x01
        _rewrite_checkpoint(path, model=base64.b64encode(zlib.compress(bytes(blob))).decode())
    elif damage == "other-code":
        _rewrite_checkpoint(path, code="0" * 64, pseudofs="0.0.1")
    elif damage == "foreign-global":                # a pickle that would run a command
        blob = _evil_pickle()
        import hashlib
        _rewrite_checkpoint(path, model=base64.b64encode(zlib.compress(blob)).decode(),
                            sha256=hashlib.sha256(blob).hexdigest())
    elif damage == "not-base64":
        _rewrite_checkpoint(path, model="*not base64*")
    elif damage == "second-checkpoint":             # one after other records
        recs = _records(path)
        data = path.read_bytes() + statelog.encode_record(recs[0][1])
        off = len(path.read_bytes())
        path.write_bytes(data)
    bad = path.read_bytes()
    with pytest.raises(statelog.StateError) as e:
        statelog.open_state(str(path), None, "c.yaml")
    msg = str(e.value)
    assert str(path) in msg and "byte offset %d" % off in msg, msg
    assert path.read_bytes() == bad                 # refused, untouched
    assert not os.path.exists("/tmp/pseudofs-evil")


def test_a_checkpoint_that_cannot_be_written_leaves_the_log_good(tmp_path, monkeypatch):
    path = tmp_path / "state"
    (tmp_path / "state.tmp").write_bytes(b"left by a crash during a compaction")
    monkeypatch.setenv(checkpoint.ENV, "3")
    t = statelog.open_state(str(path), CONFIG, "c.yaml")
    assert not (tmp_path / "state.tmp").exists()     # removed at mount: not referenced
    real_rename, calls = os.rename, []

    def failing_rename(a, b):
        calls.append(a)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "rename", failing_rename)
    for i in range(5):
        _write(t, PCT + "/alloc", b"size=8 cgroup=/app tag=y%d" % i)
    assert calls and not (tmp_path / "state.tmp").exists()
    assert not any(checkpoint.is_checkpoint(r) for _, r in _records(path))
    monkeypatch.setattr(os, "rename", real_rename)
    for i in range(5, 9):                            # tried again later, and it works
        _write(t, PCT + "/alloc", b"size=8 cgroup=/app tag=y%d" % i)
    before = dict(walk(t.tree))
    t.close()
    assert checkpoint.is_checkpoint(_records(path)[0][1])
    t = statelog.open_state(str(path), None, "c.yaml")
    assert dict(walk(t.tree)) == before
    t.close()


def test_a_daemon_waiting_on_the_lock_opens_the_compacted_file(tmp_path):
    path = str(tmp_path / "state")
    first = checkpoint.open_locked(path)
    got = {}
    waiter = threading.Thread(target=lambda: got.update(fd=checkpoint.open_locked(path)))
    waiter.start()
    time.sleep(0.2)                                  # it opened the old file and waits
    with open(path + ".new", "wb") as f:
        f.write(b"new")
    os.rename(path + ".new", path)                   # a compaction
    os.close(first)                                  # the old daemon ends
    waiter.join(10)
    assert os.fstat(got["fd"]).st_ino == os.stat(path).st_ino
    os.close(got["fd"])


@pytest.mark.soak
def test_a_million_commands_restart_within_ten_seconds(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import restart
    live = {}
    _full, ck = restart.generate(str(tmp_path), 1000000, seed=1, live=live)
    t_ck, a = restart.timed_open(ck)
    try:         # the checkpoint plus its tail gives what the commands left (bench/restart.py
        assert dict(walk(a.tree)) == live        # times the replay of the full log beside it)
    finally:
        a.close()
    print("1,000,000 commands: restart %.2f s from a checkpoint" % t_ck)
    assert t_ck <= 10.0
