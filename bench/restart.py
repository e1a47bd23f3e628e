"""Restart time of a long-lived state: a state file of N commands (default 1,000,000) mounted
from the full log against mounted from its latest checkpoint plus the tail.

    PYTHONPATH=. python bench/restart.py [--commands N] [--dir DIR] [--seed S]

The commands are what a container host does through the mount: cgroups created with a limit,
percpu allocations into them, frees, limit changes, CPUs going offline and back, cgroups freed
and removed after a lifetime. They run once, in-process, through the state log's own recorder
(statelog.StateLog, so every record is what a mount writes), into two files at once: the full
log (checkpoints off) and the checkpointed one. Records are written without fsync here (fsync
is the disk's cost, not the restart's). Then each file is opened as a mount opens it
(statelog.open_state: validate, restore, replay) and timed.
"""

import argparse
import os
import random
import sys
import time

from pseudofs.fs import checkpoint, statelog
from pseudofs.fs.statefile import LogFile, encode_record
from pseudofs.fs.tree import Caller, OpenFile
from pseudofs.errors import ModelError

CONFIG = """\
kernel: {accounting: per-node, page_size: 4096, nr_cpus: 64}
topology:
  nodes:
    - {id: 0, cpus: "0-7", memory: 64G}
    - {id: 1, cpus: "8-13", hotplug_cpus: "14-15", memory: 64G}
    - {id: 2, cpus: "", memory: 32G}
root_subtree_control: [memory]
cgroups:
  - path: /system
    allocations:
      - {size: 64, count: 200, tag: base}
"""

PCT = "/sys/kernel/debug/percpu_test"
CG = "/sys/fs/cgroup"
SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class TeeLog(LogFile):
    """The checkpointed log, plus a copy of every record in the full log; no fsync."""

    def __init__(self, path, fd, end, full):
        super().__init__(path, fd, end)
        self.full = full

    def append(self, obj):
        data = encode_record(obj)
        os.pwrite(self.fd, data, self.end)
        self.full.write(data)
        self.end += len(data)
        self.records += 1


def commands(n, seed):
    """A deterministic stream of n (op, path, data) the way a container host churns."""
    rng = random.Random(seed)
    live, tags, serial, offline = [], {}, 0, []
    out = 0
    while out < n:
        r = rng.random()
        if len(live) < 20 or (r < 0.03 and len(live) < 60):
            serial += 1
            name = "/c%d" % serial
            live.append(name)
            tags[name] = []
            yield "mkdir", CG + name, 0o755
            yield "write", CG + name + "/memory.max", b"%dM" % rng.choice((16, 64, 256))
            out += 2
        elif r < 0.06 and len(live) > 20:                  # a container ends
            name = live.pop(rng.randrange(len(live)))
            yield "write", PCT + "/free", b"cgroup=" + name.encode()
            yield "rmdir", CG + name, None
            del tags[name]
            out += 2
        elif r < 0.60:
            name = rng.choice(live)
            serial += 1
            tag = "g%d" % serial
            tags[name].append(tag)
            yield "write", PCT + "/alloc", b"size=%d count=%d cgroup=%s tag=%s" % (
                rng.choice(SIZES), rng.randint(1, 8), name.encode(), tag.encode())
            out += 1
        elif r < 0.95:
            name = rng.choice(live)
            if tags[name]:
                tag = tags[name].pop(rng.randrange(len(tags[name])))
                yield "write", PCT + "/free", b"tag=" + tag.encode()
                out += 1
        elif r < 0.99:
            name = rng.choice(live)
            knob = rng.choice(("memory.max", "memory.high"))
            yield "write", CG + name + "/" + knob, rng.choice((b"max", b"8M", b"128M", b"1G"))
            out += 1
        else:
            if offline and (len(offline) >= 3 or rng.random() < 0.5):
                yield "write", "/sys/devices/system/cpu/cpu%d/online" % offline.pop(), b"1"
            else:
                cpu = rng.choice([c for c in range(1, 16) if c not in offline])
                offline.append(cpu)
                yield "write", "/sys/devices/system/cpu/cpu%d/online" % cpu, b"0"
            out += 1


def run(slog, stream) -> int:
    caller, done = Caller(), 0
    for op, path, arg in stream:
        try:
            if op == "write":
                of = OpenFile(path, os.O_WRONLY, caller)
                try:
                    slog.write(of, arg)
                finally:
                    slog.release(of)
            elif op == "mkdir":
                slog.mkdir(path, arg, caller)
            else:
                slog.rmdir(path, caller)
        except ModelError:
            pass                    # refused: recorded too, with its errno
        done += 1
    return done


def generate(directory, n, seed, every=None, live=None):
    """Write DIR/full.state and DIR/checkpointed.state; returns their paths. With a dict as
    `live`, it gets every file of the model as the commands left it ({path: bytes})."""
    full_path = os.path.join(directory, "full.state")
    ck_path = os.path.join(directory, "checkpointed.state")
    for p in (full_path, ck_path):
        if os.path.exists(p):
            os.unlink(p)
    slog = statelog.open_state(ck_path, CONFIG, "bench/restart.py", host=_nohost())
    with open(ck_path, "rb") as f:
        head = f.read()
    full = open(full_path, "wb")
    full.write(head)
    tee = TeeLog(slog.log.path, slog.log.fd, slog.log.end, full)
    slog.log = tee
    slog.checkpoints = checkpoint.Checkpoints(tee, statelog.parse(ck_path, head), every)
    run(slog, commands(n, seed))
    if live is not None:
        from pseudofs.cli import walk
        live.update(walk(slog.tree))
    full.close()
    slog.close()
    return full_path, ck_path


def timed_open(path):
    """Seconds to open (validate, restore, replay) the state as a mount does; the tree. No
    checkpoint is written at open: that would be timed too."""
    saved = os.environ.get(checkpoint.ENV)
    os.environ[checkpoint.ENV] = "0"
    try:
        t0 = time.perf_counter()
        slog = statelog.open_state(path, None, "bench/restart.py", host=_nohost())
        return time.perf_counter() - t0, slog
    finally:
        if saved is None:
            del os.environ[checkpoint.ENV]
        else:
            os.environ[checkpoint.ENV] = saved


def _nohost():
    from pseudofs.model.procs import NoHost
    return NoHost()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", type=int, default=1000000)
    p.add_argument("--dir", default="/tmp/pseudofs-restart-bench")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    t0 = time.perf_counter()
    full, ck = generate(args.dir, args.commands, args.seed)
    gen = time.perf_counter() - t0
    t_ck, a = timed_open(ck)
    t_full, b = timed_open(full)
    from pseudofs.cli import walk
    same = dict(walk(a.tree)) == dict(walk(b.tree))
    with open(ck, "rb") as f:
        recs = statelog.parse(ck, f.read()).records
    t0 = time.perf_counter()
    checkpoint.make_record(a.tree.model, 0)
    t_write = time.perf_counter() - t0
    a.close()
    b.close()
    # a short run (fewer records than a checkpoint interval) has no checkpoint
    base, tail = ((recs[0][1]["commands"], len(recs) - 1) if recs and
                  checkpoint.is_checkpoint(recs[0][1]) else (0, len(recs)))
    total = base + tail
    print("commands: %d, %d of them recorded (generated in %.1f s)" % (args.commands, total, gen))
    print("%-26s %12s %22s %10s" % ("state file", "bytes", "records", "restart"))
    print("%-26s %12d %22d %9.2fs" % ("full log (no checkpoint)", os.path.getsize(full),
                                      total, t_full))
    print("%-26s %12d %22s %9.2fs" % ("checkpoint + tail", os.path.getsize(ck),
                                      "%d (of %d) + %d" % (base > 0, base, tail), t_ck))
    print("one checkpoint record of this model: %.3f s to make" % t_write)
    print("renders identical: %s" % same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
