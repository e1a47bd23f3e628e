"""Median open + read-to-end + close, side by side in one run (issue: performance and scale).

Targets, measured in alternating rounds so that machine drift hits all of them alike:
  pseudofs root memory.stat, a leaf memory.numa_stat, proc/vmstat (through the mount);
  a minimal fusepy file of the same size served the same way (bench/minimal_fs.py);
  the kernel's own /proc/vmstat; LXCFS's proc/meminfo (Debian's lxcfs, started here).
Then throughput with 1 and 2 concurrent readers (processes), medians of alternating repeats.
With --threads multi,single both libfuse loops are mounted (pseudofs and the minimal file
each) and measured in the same rounds.

    python3 bench/readbench.py [--rounds N] [--reads N] [--threads M[,M]] [--config FILE]
"""

import argparse
import multiprocessing as mp
import os
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
ROOT_STAT, MINIMAL, LXCFS = "memory.stat (root)", "minimal fusepy file", "LXCFS proc/meminfo"


def read_once(path: str) -> int:
    with open(path, "rb", buffering=0) as f:
        n = 0
        while True:
            b = f.read(65536)
            if not b:
                return n
            n += len(b)


def median_us(path: str, reads: int) -> float:
    times = []
    for _ in range(reads):
        t = time.perf_counter()
        read_once(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


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


class Mounts:
    """The daemons this run starts, stopped (and unmounted) whatever happens."""

    def __init__(self, tmp: str):
        self.tmp, self.children, self.ours = tmp, [], []

    def dir(self, name: str) -> str:
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        return d

    def pseudofs(self, name: str, cfg: str, threads: str) -> str:
        mnt = self.dir(name)
        self.ours.append(mnt)
        subprocess.run([sys.executable, "-m", "pseudofs", "mount", mnt, "-c", cfg,
                        "--threads", threads], check=True)
        return mnt

    def start(self, name: str, cmd, probe: str) -> str:
        """Start `cmd` with "MNT" replaced by a new mountpoint; wait until `probe` is there."""
        mnt = self.dir(name)
        cmd = [mnt if a == "MNT" else a for a in cmd]
        self.children.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL), mnt))
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
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--repeats", type=int, default=3, help="alternating throughput repeats")
    ap.add_argument("--threads", default="multi",
                    help="libfuse loop(s) to mount, comma-separated: multi, single")
    ap.add_argument("--config")
    args = ap.parse_args(argv)
    models = args.threads.split(",")
    tmp = tempfile.mkdtemp(prefix="pseudofs-bench-")
    cfg = args.config or os.path.join(tmp, "config.yaml")
    if not args.config:
        with open(cfg, "w") as f:
            f.write(CONFIG)
    mounts = Mounts(tmp)
    try:
        targets, pairs = {}, []
        for m in models:
            mnt = mounts.pseudofs("pseudofs-" + m, cfg, m)
            size = read_once(f"{mnt}/sys/fs/cgroup/memory.stat")
            mini = mounts.start("minimal-" + m, [sys.executable, os.path.join(HERE, "minimal_fs.py"),
                                                 "MNT", str(size), "--threads", m], "file")
            targets[f"{ROOT_STAT} [{m}]"] = f"{mnt}/sys/fs/cgroup/memory.stat"
            targets[f"memory.numa_stat (leaf) [{m}]"] = \
                f"{mnt}/sys/fs/cgroup/app/leaf/memory.numa_stat"
            targets[f"proc/vmstat [{m}]"] = f"{mnt}/proc/vmstat"
            targets[f"{MINIMAL} [{m}]"] = f"{mini}/file"
            pairs.append((m, f"{ROOT_STAT} [{m}]", f"{MINIMAL} [{m}]"))
        targets["kernel /proc/vmstat"] = "/proc/vmstat"
        if shutil.which("lxcfs"):
            targets[LXCFS] = mounts.start("lxcfs", ["lxcfs", "MNT"], "proc/meminfo") + "/proc/meminfo"
        else:
            print("readbench: lxcfs not installed (apt-get install lxcfs): LXCFS not measured")
        report(args, targets, pairs)
    finally:
        mounts.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(args, targets, pairs) -> None:
    for path in targets.values():          # warm-up
        median_us(path, 20)
    rounds = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, path in targets.items():
            rounds[name].append(median_us(path, args.reads))
    med = {name: statistics.median(v) for name, v in rounds.items()}
    print(f"median open+read+close, us ({args.rounds} alternating rounds x {args.reads} reads)")
    for name, v in med.items():
        print(f"  {name:40s} {v:9.1f}  (rounds {min(rounds[name]):.1f}..{max(rounds[name]):.1f})")
    print("ratios of the root memory.stat")
    for m, ours, floor in pairs:
        print(f"  [{m}] / minimal fusepy file [{m}]  {med[ours] / med[floor]:6.2f}x")
        if LXCFS in med:
            print(f"  [{m}] / LXCFS proc/meminfo          {med[ours] / med[LXCFS]:6.2f}x")
        print(f"  [{m}] / kernel /proc/vmstat         {med[ours] / med['kernel /proc/vmstat']:6.2f}x")
    gains = {name: [] for _, ours, floor in pairs for name in (ours, floor)}
    for _ in range(args.repeats):
        for name in gains:
            one = throughput(targets[name], 1, args.seconds)
            two = throughput(targets[name], 2, args.seconds)
            gains[name].append(two / one)
    print(f"second reader: throughput(2 readers) / throughput(1), median of {args.repeats} "
          "alternating")
    for m, ours, floor in pairs:
        g_ours, g_floor = statistics.median(gains[ours]), statistics.median(gains[floor])
        print(f"  [{m}] pseudofs memory.stat   {g_ours:6.2f}x  "
              + " ".join(f"{g:.2f}" for g in gains[ours]))
        print(f"  [{m}] minimal fusepy file    {g_floor:6.2f}x  "
              + " ".join(f"{g:.2f}" for g in gains[floor]))
        print(f"  [{m}] pseudofs gain / minimal gain  {g_ours / g_floor:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
