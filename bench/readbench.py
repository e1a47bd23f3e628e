"""Median open + read-to-end + close, side by side in one run (issue: performance and scale).

Targets: pseudofs's root memory.stat, a leaf memory.numa_stat and proc/vmstat through the mount;
a minimal fusepy file of the same size served the same way (bench/minimal_fs.py); the kernel's
own /proc/vmstat; LXCFS's proc/meminfo (Debian's lxcfs, started here). Each libfuse loop named
by --threads is mounted twice (pseudofs and the minimal file).

Reads are interleaved finely (--reads per target, then the next target, --rounds times, the
targets in a new random order each round) and the median is taken over all of them, so machine
drift hits every target alike. Where the reader runs relative to the daemon decides most of the
cost on a VM (waking a halted CPU costs far more than the daemon's work). Unpinned, a daemon
that only wakes on requests stays on the CPU it last ran on, and the reader runs mostly on one:
which daemons share the reader's CPU is a lottery drawn when they start, and it favoured some
targets for a whole run (seen here: of two daemons read in turn, one beside the reader in 40
rounds of 40, the other in none; pinning the reader to the other CPU swapped them). So each
--placement is measured on its own:
  same      every daemon thread and the reader(s) on CPU 0
  split     every daemon thread on CPU 0, the reader(s) on CPU 1
  unpinned  the scheduler places everything, but each round draws a CPU at random and every
            daemon is moved there (`rehome`) just before its target is read: all targets of a
            round get the same draw, and the draw changes from round to round
For split and unpinned, the throughput with 1 and 2 concurrent readers (processes) as well,
medians of --repeats alternating repetitions.

    python3 bench/readbench.py [--threads single,multi] [--placement unpinned,same,split]
"""

import argparse
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = """
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "4-7", memory: 8G}
cgroups:
  - path: /app
    subtree_control: [memory]
    allocations: [{size: 64, count: 1000}]
  - path: /app/leaf
    allocations: [{size: 256, count: 100}]
"""
ROOT_STAT, MINIMAL, LXCFS, KERNEL = ("memory.stat (root)", "minimal fusepy file",
                                     "LXCFS proc/meminfo", "kernel /proc/vmstat")
PLACEMENTS = {"unpinned": (None, None), "same": ({0}, {0}), "split": ({0}, {1})}


def read_once(path: str) -> int:
    with open(path, "rb", buffering=0) as f:
        n = 0
        while True:
            b = f.read(65536)
            if not b:
                return n
            n += len(b)


def timed_reads(path: str, reads: int) -> list:
    times = []
    for _ in range(reads):
        t = time.perf_counter()
        read_once(path)
        times.append(time.perf_counter() - t)
    return times


def _reader(path: str, seconds: float, out) -> None:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        read_once(path)
        n += 1
    out.put(n)


def throughput(path: str, readers: int, seconds: float) -> float:
    q = mp.Queue()
    procs = [mp.Process(target=_reader, args=(path, seconds, q)) for _ in range(readers)]
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def wait_mounted(mnt: str, probe: str, timeout: float = 15) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if os.path.ismount(mnt) and os.path.exists(os.path.join(mnt, probe)):
            return
        time.sleep(0.05)
    raise SystemExit(f"readbench: {mnt} did not mount")


def pin_daemons(mountpoints, cpus) -> None:
    """Every thread of every process whose command line names one of `mountpoints`."""
    cpus = cpus or set(range(os.cpu_count()))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not any(os.fsencode(m) in argv for m in mountpoints):
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except (FileNotFoundError, ProcessLookupError):
            pass


def rehome(mountpoints, path: str, cpu: int) -> None:
    """Move the daemon serving `path` to `cpu` and let it run there once, then unpin it: it
    stays there (its last CPU) until the scheduler moves it."""
    mnt = [m for m in mountpoints if path.startswith(m + "/")]
    if mnt:
        pin_daemons(mnt, {cpu})
        read_once(path)
        pin_daemons(mnt, None)


class Mounts:
    """The daemons this run starts, stopped (and unmounted) whatever happens."""

    def __init__(self, tmp: str):
        self.tmp, self.children, self.ours, self.all = tmp, [], [], []

    def dir(self, name: str) -> str:
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        self.all.append(d)
        return d

    def pseudofs(self, name: str, cfg: str, *options: str) -> str:
        mnt = self.dir(name)
        self.ours.append(mnt)
        subprocess.run([sys.executable, "-m", "pseudofs", "mount", mnt, "-c", cfg, *options],
                       check=True)
        return mnt

    def start(self, name: str, cmd, probe: str) -> str:
        """Start `cmd` with "MNT" replaced by a new mountpoint; wait until `probe` is there."""
        mnt = self.dir(name)
        cmd = [mnt if a == "MNT" else a for a in cmd]
        # a session of its own, as `pseudofs mount` gives its daemon (setsid): with
        # sched_autogroup each session is its own scheduling group, and a daemon left in the
        # reader's session would be placed next to the reader more often than ours is
        self.children.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL,
                                               start_new_session=True), mnt))
        wait_mounted(mnt, probe)
        return mnt

    def stop(self) -> None:
        for child, _ in self.children:       # SIGTERM: libfuse leaves its loop and unmounts
            child.terminate()
        for child, mnt in self.children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
            if os.path.ismount(mnt):
                subprocess.run(["fusermount", "-u", mnt], stderr=subprocess.DEVNULL)
        for mnt in self.ours:
            subprocess.run([sys.executable, "-m", "pseudofs", "umount", mnt],
                           stderr=subprocess.DEVNULL)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reads", type=int, default=40, help="reads per target per round")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5, help="alternating throughput repeats")
    ap.add_argument("--threads", default="single,multi",
                    help="libfuse loops to mount, comma-separated: single, multi")
    ap.add_argument("--placement", default="same,split,unpinned",
                    help="comma-separated: " + ", ".join(PLACEMENTS))
    ap.add_argument("--seed", type=int, default=1, help="of the order of targets in each round")
    ap.add_argument("--config")
    args = ap.parse_args(argv)
    models, placements = args.threads.split(","), args.placement.split(",")
    if os.cpu_count() < 2:
        placements = [p for p in placements if p != "split"]
    tmp = tempfile.mkdtemp(prefix="pseudofs-bench-")
    cfg = args.config or os.path.join(tmp, "config.yaml")
    if not args.config:
        with open(cfg, "w") as f:
            f.write(CONFIG)
    mounts = Mounts(tmp)
    try:
        targets, pairs = {}, []
        for m in models:
            mnt = mounts.pseudofs("pseudofs-" + m, cfg, "--threads", m)
            size = read_once(f"{mnt}/sys/fs/cgroup/memory.stat")
            mini = mounts.start("minimal-" + m, [sys.executable, os.path.join(HERE, "minimal_fs.py"),
                                                 "MNT", str(size), "--threads", m], "file")
            targets[f"{ROOT_STAT} [{m}]"] = f"{mnt}/sys/fs/cgroup/memory.stat"
            targets[f"memory.numa_stat (leaf) [{m}]"] = \
                f"{mnt}/sys/fs/cgroup/app/leaf/memory.numa_stat"
            targets[f"proc/vmstat [{m}]"] = f"{mnt}/proc/vmstat"
            targets[f"{MINIMAL} [{m}]"] = f"{mini}/file"
            pairs.append((m, f"{ROOT_STAT} [{m}]", f"{MINIMAL} [{m}]"))
        # what caching positive entries for 1 s saves: the same mount with entry_timeout=0
        no_entry = mounts.pseudofs("pseudofs-entry0", cfg, "--threads", models[0],
                                   "--entry-timeout", "0")
        entry0 = f"{ROOT_STAT} [{models[0]}, entry_timeout=0]"
        targets[entry0] = f"{no_entry}/sys/fs/cgroup/memory.stat"
        targets[KERNEL] = "/proc/vmstat"
        if shutil.which("lxcfs"):
            targets[LXCFS] = mounts.start("lxcfs", ["lxcfs", "MNT"], "proc/meminfo") + "/proc/meminfo"
        else:
            print("readbench: lxcfs not installed (apt-get install lxcfs): LXCFS not measured")
        for placement in placements:
            daemon_cpus, reader_cpus = PLACEMENTS[placement]
            pin_daemons(mounts.all, daemon_cpus)
            os.sched_setaffinity(0, reader_cpus or set(range(os.cpu_count())))
            place = (lambda path, cpu: rehome(mounts.all, path, cpu)) \
                if daemon_cpus is None else (lambda path, cpu: None)
            latency(args, placement, targets, pairs, entry0, place)
            if placement != "same":         # two readers on one CPU with the daemon: no gain
                gains(args, targets, pairs, place)
    finally:
        mounts.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def latency(args, placement, targets, pairs, entry0, place) -> None:
    for path in targets.values():          # warm-up
        timed_reads(path, 20)
    samples = {name: [] for name in targets}
    rounds = {name: [] for name in targets}
    order = list(targets.items())
    rng = random.Random(args.seed)
    for _ in range(args.rounds):
        rng.shuffle(order)
        cpu = rng.randrange(os.cpu_count())
        for name, path in order:
            place(path, cpu)
            t = timed_reads(path, args.reads)
            samples[name] += t
            rounds[name].append(statistics.median(t) * 1e6)
    med = {name: statistics.median(v) * 1e6 for name, v in samples.items()}
    print(f"\n== placement: {placement}  (median of {args.rounds} rounds x {args.reads} reads, "
          "us; the spread of round medians in brackets)")
    for name, v in med.items():
        print(f"  {name:36s} {v:8.1f}  [{min(rounds[name]):.0f}..{max(rounds[name]):.0f}]")
    for m, ours, floor in pairs:
        line = f"  root memory.stat [{m}]: {med[ours] / med[floor]:.2f}x the minimal file"
        if LXCFS in med:
            line += f", {med[ours] / med[LXCFS]:.2f}x LXCFS"
        print(line + f", {med[ours] / med[KERNEL]:.1f}x the kernel")
    print(f"  entry_timeout 1 s / 0: {med[pairs[0][1]] / med[entry0]:.2f}x")
    if len(pairs) == 2:
        (m1, o1, f1), (m2, o2, f2) = pairs
        print(f"  thread model: [{m1}] / [{m2}]: pseudofs {med[o1] / med[o2]:.2f}x, "
              f"minimal file {med[f1] / med[f2]:.2f}x")


def gains(args, targets, pairs, place) -> None:
    rng = random.Random(args.seed)
    names = [n for _, ours, floor in pairs for n in (ours, floor)] + \
        [n for n in (LXCFS, KERNEL) if n in targets]
    runs = {name: [] for name in names}          # (throughput with 1 reader, with 2)
    for _ in range(args.repeats):
        cpu = rng.randrange(os.cpu_count())
        for name in names:
            place(targets[name], cpu)
            one = throughput(targets[name], 1, args.seconds)
            place(targets[name], cpu)
            runs[name].append((one, throughput(targets[name], 2, args.seconds)))
    gain = {n: [two / one for one, two in v] for n, v in runs.items()}
    # with 2 readers, the time one read takes is 2 / throughput: ratios of times
    per_read = {n: 2 / statistics.median(two for _, two in v) for n, v in runs.items()}
    print(f"  second reader: throughput(2 readers) / throughput(1), median of {args.repeats} "
          "alternating repetitions")
    for m, ours, floor in pairs:
        g_ours, g_floor = statistics.median(gain[ours]), statistics.median(gain[floor])
        print(f"    [{m}] pseudofs memory.stat {g_ours:.2f}x ("
              + " ".join(f"{g:.2f}" for g in gain[ours]) + f"), minimal file {g_floor:.2f}x ("
              + " ".join(f"{g:.2f}" for g in gain[floor]) + f"): {g_ours / g_floor:.2f}x its gain")
        line = (f"    [{m}] with 2 readers, a read of memory.stat takes "
                f"{per_read[ours] / per_read[floor]:.2f}x the minimal file's time")
        for other in (LXCFS, KERNEL):
            if other in per_read:
                line += f", {per_read[ours] / per_read[other]:.2f}x {other}'s"
        print(line)

if __name__ == "__main__":
    sys.exit(main())
