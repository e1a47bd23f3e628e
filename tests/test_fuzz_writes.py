"""Hostile input: thousands of generated writes through the real mount, spread over every
writable file (cgroup core files, memory.*, cpuN/online, percpu_test/alloc and free): random
bytes, huge and negative numbers, unknown and repeated keys, embedded NULs, lines up to 64 KiB,
writes at odd offsets, commands split over two writes, plus enough valid commands that the model
keeps changing.

For every write: only a kernel errno (never EIO: a bug the adapter caught), and a refused write
leaves the model's generation unchanged; around every 20th write the whole tree is rendered
before and after, and a refused write changed nothing (but the memory.events counters a refused
charge counts). The `fuse_log` fixture fails the test on any logged error or
traceback. The tree is served through the state log, so at the end the state file is replayed
into a fresh model, which must render the same bytes: garbage cannot desynchronize durability.
"""

import errno
import os
import random
import subprocess
import time

import pytest

from pseudofs.cli import walk
from pseudofs.fs import statelog
from pseudofs.fs.tree import Caller

PCT = "/sys/kernel/debug/percpu_test"
# `make test` runs the short fuzz, `make soak` the long one; PSEUDOFS_FUZZ_WRITES overrides both
QUICK_WRITES, SOAK_WRITES = 1000, 10000
DIGEST_EVERY = 20
KERNEL_ERRNOS = {errno.EINVAL, errno.ERANGE, errno.ENOENT, errno.EBUSY, errno.ESRCH,
                 errno.EEXIST, errno.ENOMEM, errno.EAGAIN, errno.EOPNOTSUPP, errno.E2BIG,
                 errno.ENODEV, errno.EPERM, errno.EACCES, errno.ENOSPC}
CONFIG = """\
kernel: {accounting: per-node}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 256M}
    - {id: 1, cpus: "3", hotplug_cpus: "4", memory: 256M}
    - {id: 2, cpus: "", memory: 256M}
    - {id: 3, cpus: "5", memory: 0}
  possible_cpus: "0-6"
cgroups:
  - path: /a
    subtree_control: [memory]
    memory.max: 32M
    allocations:
      - {size: 64, count: 100, tag: warm}
  - path: /a/b
  - path: /a/c
  - path: /d
  - path: /d/e
"""
CGROUPS = ["/", "/a", "/a/b", "/a/c", "/d", "/d/e", "/nope", "", "a", "/a/", "//a", "/a/b/.."]
NUMBERS = ["0", "1", "-1", "-0", "2", "7", "4", "4096", "4097", "32768", "32769", "100000",
           "100001", str(2**31 - 1), str(2**31), str(2**32), str(2**63 - 1), str(2**63),
           str(2**64), str(2**64 + 1), str(-2**63), "0x10", "0X7fffffff", "010", "08", "0b1",
           "1e3", "+5", " 5", "5 ", "4K", "4k", "1M", "1G", "16E", "17E", "1P", "-4K", "4KB",
           "0x10K", "max", "MAX", " max ", "max\n", "none", "", "9" * 40, "-" + "9" * 40]
KEYS = ["size", "count", "align", "cgroup", "tag", "account", "all", "SIZE", "sz", "", "=",
        "size ", "tag\0"]


def _rand_bytes(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def _kv_soup(rng):
    toks = []
    for _ in range(rng.randint(0, 7)):
        k = rng.choice(KEYS)
        v = rng.choice(NUMBERS + CGROUPS + ["t%d" % rng.randrange(30), "x" * rng.randint(0, 300)])
        form = rng.choice(["%s=%s", "%s=%s", "%s==%s", "%s", "=%s"])
        toks.append(form % ((k, v) if form.count("%s") == 2 else (k or v,)))
    sep = rng.choice([" ", "  ", "\t", "\n", " \n ", ","])
    return sep.join(toks).encode("latin-1", "replace")


def _valid(rng, name, tags, pids=()):
    """Commands the kernel (or README's Control files) accepts, so the model keeps changing."""
    if name == "alloc":
        cmd = "size=%d count=%d cgroup=%s" % (rng.choice([4, 8, 64, 100, 1000, 4096, 32768]),
                                                rng.randint(1, 40),
                                                rng.choice(CGROUPS[:6]))
        if rng.random() < 0.5:
            cmd += " tag=t%d" % rng.randrange(30)
        if rng.random() < 0.3:
            cmd += " align=%d" % rng.choice([1, 2, 4, 8, 64, 4096])
        if rng.random() < 0.2:
            cmd += " account=0"
        return cmd.encode()
    if name == "free":
        r = rng.random()
        if r < 0.05:
            return b"all"
        if r < 0.2:
            return b"cgroup=" + rng.choice(CGROUPS[:6]).encode()
        tag = rng.choice(tags) if tags else "t0"
        return ("tag=%s" % tag + (" count=%d" % rng.randint(1, 5) if rng.random() < 0.5
                                  else "")).encode()
    if name == "online":
        return rng.choice([b"0", b"1", b"on", b"off", b"y", b"n", b"1\n"])
    if name in ("cgroup.procs", "cgroup.threads"):
        return str(rng.choice([0, os.getpid(), 1, 2, *pids])).encode()
    if name == "cgroup.subtree_control":
        return rng.choice([b"+memory", b"-memory", b"+memory -memory", b"", b" +memory\n"])
    if name in ("cgroup.max.descendants", "cgroup.max.depth"):
        return rng.choice([b"max", b"0", b"1", b"5", b"100"])
    if name in ("cgroup.freeze", "memory.oom.group", "memory.zswap.writeback"):
        return rng.choice([b"0", b"1"])
    if name == "cgroup.kill":
        return b"1"
    if name == "cgroup.type":
        return b"threaded"
    if name == "memory.reclaim":
        return rng.choice([b"0", b"1M", b"4K swappiness=60", b"1 swappiness=max"])
    return rng.choice([b"max", b"0", b"64M", b"1G", b"4096", b"123456789"])


def generate(rng, name, tags, pids=()):
    kind = rng.randrange(10)
    if kind == 0:
        return _rand_bytes(rng, rng.randint(0, 64))
    if kind == 1:
        return rng.choice(NUMBERS).encode()
    if kind == 2:
        return _kv_soup(rng)
    if kind == 3:                                     # embedded NULs
        v = _valid(rng, name, tags)
        i = rng.randint(0, len(v))
        return v[:i] + b"\0" + rng.choice([b"", b"junk", v])
    if kind == 4:                                     # very long lines, up to 64 KiB
        n = rng.choice([4095, 4096, 4097, 8192, 65535, 65536, rng.randint(1, 65536)])
        filler = rng.choice([b"1", b" ", b"x", b"+memory ", b"size=64 ", b"\n"])
        return (_valid(rng, name, tags) + b" " + filler * n)[:n] if rng.random() < 0.5 \
            else (filler * n)[:n]
    if kind == 5:                                     # high bytes, not UTF-8
        return _valid(rng, name, tags) + bytes([rng.randrange(128, 256)])
    if kind == 6 and name == "alloc":                 # the count cap, node memory bounds
        return rng.choice([b"size=32768 count=100000 cgroup=/d", b"size=16K count=100000",
                           b"size=32768 count=100001", b"size=32K count=99999 cgroup=/a",
                           b"size=8 count=18446744073709551617", b"size=32769 count=1"])
    return _valid(rng, name, tags, pids)


# The fault plan is the harness's own file, not the model's: a refused plan is logged by design
# (docs/faults.md) and an accepted one changes what reads return; tests/test_faults_* cover it.
NOT_FUZZED = (PCT + "/faults",)


def _files(tree, path="/"):
    caller = Caller()
    for name in tree.readdir(path, caller):
        child = path.rstrip("/") + "/" + name
        attr = tree.getattr(child, caller)
        if attr.is_dir:
            yield from _files(tree, child)
        elif attr.mode & 0o222 and child not in NOT_FUZZED:
            yield child


def _digest(tree) -> dict:
    with tree.lock:
        return dict(walk(tree))


def _changed(a: dict, b: dict) -> list:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _write(path, data: bytes, rng):
    """One of: a plain write, a write at an odd offset, a command split over two writes,
    an O_TRUNC/O_APPEND/O_RDWR open. Returns the errnos (0: accepted) of the writes."""
    how = rng.randrange(6)
    flags = os.O_WRONLY | [0, 0, os.O_TRUNC, os.O_APPEND, 0, 0][how]
    if how == 4 and path.endswith(("/alloc",)):
        flags = os.O_RDWR
    fd = os.open(path, flags)
    out = []
    try:
        pieces = [data]
        if how == 5 and len(data) > 1:
            cut = rng.randint(1, len(data) - 1)
            pieces = [data[:cut], data[cut:]]
        for piece in pieces:
            try:
                if how == 1:
                    n = os.pwrite(fd, piece, rng.choice([1, 7, 4095, 65537, 2**40]))
                else:
                    n = os.write(fd, piece)
                assert n == len(piece), (path, len(piece), n)
                out.append(0)
            except OSError as e:
                out.append(e.errno)
    finally:
        os.close(fd)
    return out


@pytest.mark.parametrize("n_writes", [
    QUICK_WRITES, pytest.param(SOAK_WRITES, marks=pytest.mark.soak)])
def test_fuzz_every_writable_file(mount_tree, tmp_path, sleeper, fuse_log, n_writes):
    n_writes = int(os.environ.get("PSEUDOFS_FUZZ_WRITES", n_writes))
    state = str(tmp_path / "state")
    tree = statelog.open_state(state, CONFIG, "fuzz.yaml")
    mnt = mount_tree(tree)
    rng = random.Random(int(os.environ.get("PSEUDOFS_FUZZ_SEED", "5")))
    model = tree.model
    stats = {"writes": 0, "accepted": 0, "rejected": 0, "digests": 0}
    by_errno, by_file, slowest = {}, {}, (0.0, None, None)
    with tree.lock:
        files = sorted(_files(tree))
    names = {os.path.basename(f) for f in files}
    assert {"alloc", "free", "online", "cgroup.procs", "memory.max", "memory.peak",
            "cgroup.subtree_control", "memory.reclaim", "cgroup.kill"} <= names
    i = 0
    while stats["writes"] < n_writes:
        if i % 200 == 0:
            with tree.lock:
                files = sorted(_files(tree))
        # round robin over every writable file, so each gets its share of garbage; a quarter
        # of the writes go to the control files, whose commands move the most state
        if i % 4 == 0:
            rel = PCT + rng.choice(("/alloc", "/alloc", "/free"))
        else:
            rel = files[i // 4 % len(files)] if i % 3 else rng.choice(files)
        i += 1
        name = os.path.basename(rel)
        with tree.lock:
            tags = sorted(model.groups.groups)
        data = generate(rng, name, tags, (sleeper.pid,))
        check = i % DIGEST_EVERY == 0
        before = _digest(tree) if check else None
        gen = model.generation
        t0 = time.monotonic()
        try:
            results = _write(mnt + rel, data, rng)
        except OSError as e:                         # the file went away (cgroup.kill ...)
            assert e.errno == errno.ENOENT, (rel, e)
            continue
        took = time.monotonic() - t0
        if took > slowest[0]:
            slowest = (took, rel, data[:80])
        for got in results:
            stats["writes"] += 1
            by_errno[got] = by_errno.get(got, 0) + 1
            by_file.setdefault(name, [0, 0])[got != 0] += 1
            if got == 0:
                stats["accepted"] += 1
            else:
                stats["rejected"] += 1
                assert got in KERNEL_ERRNOS, (rel, data[:200], errno.errorcode.get(got, got))
        if all(results):                              # every piece refused: nothing changed
            assert model.generation == gen, (rel, data[:200], results)
            if check:
                after = _digest(tree)
                stats["digests"] += 1
                changed = _changed(before, after)
                if errno.ENOMEM in results:           # a refused charge counts its events
                    changed = [p for p in changed if not p.endswith(
                        ("/memory.events", "/memory.events.local"))]
                assert not changed, (rel, data[:200], results, changed[:5])
    assert slowest[0] < 30, slowest
    # every writable file got garbage, and refused some of it
    assert {os.path.basename(f) for f in files} <= set(by_file)
    never_refused = [n for n, (a, r) in sorted(by_file.items()) if not r and a + r >= 100]
    assert not never_refused, never_refused
    # durability under garbage: the state file replays to the same bytes
    live = _digest(tree)
    with open(state, "rb") as f:
        data = f.read()
    with open(state + ".copy", "wb") as f:
        f.write(data)
    replayed = statelog.open_state(state + ".copy", None, "x", warn=pytest.fail)
    try:
        again = _digest(replayed)
    finally:
        replayed.close()
    drop = ("/proc/self",)
    same = lambda d: {k: v for k, v in d.items() if not k.startswith(drop)}   # noqa: E731
    assert same(live) == same(again), _changed(same(live), same(again))[:5]
    print("fuzz: %d writes (%d accepted, %d rejected: %s), %d full digests, %d writable "
          "files (%d names), "
          "%d state records, slowest write %.2f s (%s)" % (
              stats["writes"], stats["accepted"], stats["rejected"],
              ", ".join("%s %d" % (errno.errorcode.get(e, "ok"), n)
                        for e, n in sorted(by_errno.items())),
              stats["digests"], len(files), len(by_file), len(statelog.parse(state, data).records),
              slowest[0], slowest[1]))


def test_one_write_of_the_largest_count_is_bounded_in_time():
    """count=100000 (the cap) of the smallest objects: one write must not hold the daemon for
    minutes. Run in a child with a deadline, so a slow model cannot hang the suite."""
    code = ("import os\n"
            "from pseudofs.fs.routes import build_tree\n"
            "from pseudofs.config import parse_config\n"
            "from pseudofs.fs.tree import Caller, OpenFile\n"
            "t = build_tree(parse_config(%r))\n"
            "t.write(OpenFile('/sys/kernel/debug/percpu_test/alloc', os.O_WRONLY, Caller()),"
            " b'size=4 count=100000 cgroup=/d')\n" % CONFIG)
    import sys
    from daemon_util import REPO
    try:
        r = subprocess.run([sys.executable, "-c", code], timeout=10, capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=REPO))
    except subprocess.TimeoutExpired:
        raise AssertionError("one write of count=100000 took more than 10 s") from None
    assert r.returncode == 0, r.stderr
