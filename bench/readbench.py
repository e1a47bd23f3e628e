"""Median open + read-to-end + close, side by side in one run (issue: performance and scale).

Targets, measured in alternating rounds so that machine drift hits all of them alike:
  pseudofs root memory.stat, a leaf memory.numa_stat, proc/vmstat (through the mount);
  a minimal fusepy file of the same size served the same way (bench/minimal_fs.py);
  the kernel's own /proc/vmstat; LXCFS's proc/meminfo (Debian's lxcfs, started here).
Then throughput with 1 and 2 concurrent readers (processes), medians of alternating repeats.

    python3 bench/readbench.py [--rounds N] [--reads N] [--config FILE]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--config")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="pseudofs-bench-")
    mnt, mini, lxc = (os.path.join(tmp, d) for d in ("pseudofs", "minimal", "lxcfs"))
    for d in (mnt, mini, lxc):
        os.mkdir(d)
    cfg = args.config or os.path.join(tmp, "config.yaml")
    if not args.config:
        with open(cfg, "w") as f:
            f.write(CONFIG)
    children = []
    try:
        subprocess.run([sys.executable, "-m", "pseudofs", "mount", mnt, "-c", cfg], check=True)
        size = read_once(f"{mnt}/sys/fs/cgroup/memory.stat")
        children.append(subprocess.Popen([sys.executable, os.path.join(HERE, "minimal_fs.py"),
                                          mini, str(size)]))
        wait_mounted(mini, "file")
        targets = {
            "pseudofs memory.stat (root)": f"{mnt}/sys/fs/cgroup/memory.stat",
            "pseudofs memory.numa_stat (leaf)": f"{mnt}/sys/fs/cgroup/app/leaf/memory.numa_stat",
            "pseudofs proc/vmstat": f"{mnt}/proc/vmstat",
            "minimal fusepy file": f"{mini}/file",
            "kernel /proc/vmstat": "/proc/vmstat",
        }
        if shutil.which("lxcfs"):
            children.append(subprocess.Popen(["lxcfs", lxc], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
            wait_mounted(lxc, "proc/meminfo")
            targets["LXCFS proc/meminfo"] = f"{lxc}/proc/meminfo"
        else:
            print("readbench: lxcfs not installed (apt-get install lxcfs): LXCFS not measured")
        for path in targets.values():          # warm-up
            median_us(path, 20)
        rounds = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, path in targets.items():
                rounds[name].append(median_us(path, args.reads))
        med = {name: statistics.median(v) for name, v in rounds.items()}
        print(f"median open+read+close, us ({args.rounds} alternating rounds x {args.reads} reads)")
        for name, v in med.items():
            print(f"  {name:36s} {v:9.1f}  (rounds {min(rounds[name]):.1f}..{max(rounds[name]):.1f})")
        ours, floor = med["pseudofs memory.stat (root)"], med["minimal fusepy file"]
        print("ratios")
        print(f"  memory.stat / minimal fusepy file    {ours / floor:6.2f}x")
        if "LXCFS proc/meminfo" in med:
            print(f"  memory.stat / LXCFS proc/meminfo     {ours / med['LXCFS proc/meminfo']:6.2f}x")
        print(f"  memory.stat / kernel /proc/vmstat    {ours / med['kernel /proc/vmstat']:6.2f}x")
        gains = {"pseudofs memory.stat (root)": [], "minimal fusepy file": []}
        for _ in range(3):
            for name in gains:
                one = throughput(targets[name], 1, args.seconds)
                two = throughput(targets[name], 2, args.seconds)
                gains[name].append(two / one)
        g_ours = statistics.median(gains["pseudofs memory.stat (root)"])
        g_floor = statistics.median(gains["minimal fusepy file"])
        print("second reader: throughput(2 readers) / throughput(1), median of 3 alternating")
        print(f"  pseudofs memory.stat                 {g_ours:6.2f}x  {gains['pseudofs memory.stat (root)']}")
        print(f"  minimal fusepy file                  {g_floor:6.2f}x  {gains['minimal fusepy file']}")
        print(f"  pseudofs gain / minimal gain         {g_ours / g_floor:6.2f}x")
    finally:
        for c in children:
            c.terminate()
        for d in (mini, lxc):
            subprocess.run(["fusermount", "-u", d], stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "pseudofs", "umount", mnt],
                       stderr=subprocess.DEVNULL)
        for c in children:
            try:
                c.wait(timeout=5)
            except subprocess.TimeoutExpired:
                c.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
