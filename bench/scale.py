"""Scale: 10,000 cgroups (3 levels) on 8 nodes of 64G with 512 possible CPUs, through the mount.

Prints: the time to create them with mkdir(2) (and +memory) through the mount; the median
open+read+close of the root's memory.stat and memory.numa_stat at that size; the cost of an
allocation command in the big tree against a second daemon holding a 10-cgroup tree, in
alternating rounds, both daemons and this process on CPU 0 (so that only the model's work
differs, not where the scheduler put a daemon: see bench/readbench.py); the big daemon's
resident memory.

    python3 bench/scale.py [--a 10 --b 33 --c 29]
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from readbench import pin_daemons      # bench/ is this script's directory

CONFIG = ("kernel: {nr_cpus: 512}\ntopology:\n  nodes:\n"
          + "".join(f'    - {{id: {i}, cpus: "{i * 8}-{i * 8 + 7}", memory: 64G}}\n'
                    for i in range(8))
          + '  possible_cpus: "0-511"\n')


def read_us(path: str, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.read(65536):
                pass
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def alloc_times(mnt: str, cgroup: str, n: int) -> list:
    ctl, free = (f"{mnt}/sys/kernel/debug/percpu_test/{f}" for f in ("alloc", "free"))
    times = []
    for i in range(n):
        t = time.perf_counter()
        write(ctl, f"size=64 count=1 cgroup={cgroup} tag=s{i}")
        times.append(time.perf_counter() - t)
    for i in range(n):
        write(free, f"tag=s{i}")
    return times


def small_tree(cg: str) -> None:
    """/small with memory enabled and 8 children: with the root, a 10-cgroup tree."""
    os.makedirs(f"{cg}/small")
    write(f"{cg}/small/cgroup.subtree_control", "+memory")
    for i in range(8):
        os.mkdir(f"{cg}/small/s{i}")


def daemon_rss_mb(mnt: str) -> float:
    out = subprocess.run(["pgrep", "-f", f"pseudofs mount {mnt}"], capture_output=True,
                         text=True).stdout.split()
    for pid in out:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", type=int, default=10)
    ap.add_argument("--b", type=int, default=33)
    ap.add_argument("--c", type=int, default=29)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="pseudofs-scale-")
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    mounts = []
    try:
        for name in ("big", "small"):
            mounts.append(os.path.join(tmp, name))
            os.mkdir(mounts[-1])
            subprocess.run([sys.executable, "-m", "pseudofs", "mount", mounts[-1], "-c", cfg],
                           check=True)
        big, small = mounts
        cg = f"{big}/sys/fs/cgroup"
        small_tree(cg)
        small_tree(f"{small}/sys/fs/cgroup")
        n, t = 0, time.perf_counter()
        for a in range(args.a):
            os.mkdir(f"{cg}/a{a}")
            write(f"{cg}/a{a}/cgroup.subtree_control", "+memory")
            n += 1
            for b in range(args.b):
                os.mkdir(f"{cg}/a{a}/b{b}")
                write(f"{cg}/a{a}/b{b}/cgroup.subtree_control", "+memory")
                n += 1
                for c in range(args.c):
                    os.mkdir(f"{cg}/a{a}/b{b}/c{c}")
                    n += 1
        created = time.perf_counter() - t
        print(f"{n} cgroups (+ 10 small) created through the mount in {created:.1f} s")
        print(f"root memory.stat      median open+read+close {read_us(cg + '/memory.stat') / 1000:.2f} ms")
        print(f"root memory.numa_stat median open+read+close "
              f"{read_us(cg + '/memory.numa_stat') / 1000:.2f} ms")
        pin_daemons(mounts, {0})
        os.sched_setaffinity(0, {0})
        leaf = f"/a{args.a // 2}/b{args.b // 2}/c{args.c // 2}"
        targets = [("big", big, "/small/s3"), ("small", small, "/small/s3"),
                   ("big, deeper leaf", big, leaf)]
        times = {name: [] for name, _, _ in targets}
        rng = random.Random(1)
        for _ in range(args.rounds):
            rng.shuffle(targets)
            for name, mnt, where in targets:
                times[name] += alloc_times(mnt, where, 20)
        us = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        print(f"alloc command (one 64-byte object, median of {args.rounds} alternating rounds "
              f"x 20) in /small/s3: {us['big']:.0f} us beside the big tree, {us['small']:.0f} us "
              f"in the 10-cgroup tree: ratio {us['big'] / us['small']:.2f}x; in {leaf} (one "
              f"level deeper): {us['big, deeper leaf']:.0f} us, "
              f"{us['big, deeper leaf'] / us['small']:.2f}x")
        print(f"daemon resident memory {daemon_rss_mb(big):.0f} MB")
    finally:
        for mnt in mounts:
            subprocess.run([sys.executable, "-m", "pseudofs", "umount", mnt],
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
