"""What `pseudofs exec`'s supervisor costs, side by side in one run: the same loop inside
`pseudofs exec --fs-magic fuse` (no filter, no supervisor) and inside `pseudofs exec` (every
statfs and open goes to the supervisor), interleaved round by round, medians over the rounds.

Loops (in the exec'd python, time per call):
  statfs /sys/fs/cgroup             a bound path: answered by the supervisor
  statfs /tmp                       trapped, then continued untouched
  open+read+close app/memory.stat   the open is trapped and continued (a FUSE read follows)
  open+read+close /etc/hostname     the same on a disk file: the open's round trip alone

    python3 bench/execbench.py [--rounds 15] [--statfs 10000] [--opens 1000]
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = """
cgroups:
  - path: /app
    allocations: [{size: 64, count: 1000}]
"""
LOOP = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
what, path, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
buf = ctypes.create_string_buffer(120)
statfs = libc.statfs
if what == "statfs":
    t = time.perf_counter()
    for _ in range(n):
        statfs(path, buf)
else:
    t = time.perf_counter()
    for _ in range(n):
        fd = os.open(path, os.O_RDONLY)
        while os.read(fd, 65536):
            pass
        os.close(fd)
print((time.perf_counter() - t) / n * 1e6)
"""
CASES = [("statfs", "/sys/fs/cgroup", "statfs"), ("statfs", "/tmp", "statfs"),
         ("open", "/sys/fs/cgroup/app/memory.stat", "opens"), ("open", "/etc/hostname", "opens")]


def one(mnt: str, magic: str, what: str, path: str, n: int) -> float:
    r = subprocess.run([sys.executable, "-m", "pseudofs", "exec", "--fs-magic", magic, mnt,
                        "--", sys.executable, "-c", LOOP, what, path, str(n)],
                       capture_output=True, text=True, check=True)
    return float(r.stdout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--statfs", type=int, default=10000, help="statfs calls per loop")
    p.add_argument("--opens", type=int, default=1000, help="open+read+close per loop")
    args = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="execbench-")
    mnt, cfg = os.path.join(tmp, "mnt"), os.path.join(tmp, "c.yaml")
    os.mkdir(mnt)
    with open(cfg, "w") as f:
        f.write(CONFIG)
    subprocess.run([sys.executable, "-m", "pseudofs", "mount", mnt, "-c", cfg], check=True)
    try:
        for _ in range(100):
            if os.path.exists(mnt + "/sys/fs/cgroup/app/memory.stat"):
                break
            time.sleep(0.1)
        times = {(c, m): [] for c in CASES for m in ("fuse", "kernel")}
        for _ in range(args.rounds):
            runs = [(c, m) for c in CASES for m in ("fuse", "kernel")]
            random.shuffle(runs)
            for c, m in runs:
                times[(c, m)].append(one(mnt, m, c[0], c[1], getattr(args, c[2])))
        print(f"{'loop':46} {'no supervisor':>14} {'supervisor':>11} {'ratio':>6}"
              f"   (us per call, median of {args.rounds} rounds)")
        for c in CASES:
            a = statistics.median(times[(c, "fuse")])
            b = statistics.median(times[(c, "kernel")])
            name = ("statfs " if c[0] == "statfs" else "open+read+close ") + c[1]
            print(f"{name:46} {a:14.2f} {b:11.2f} {b / a:6.2f}x")
    finally:
        subprocess.run([sys.executable, "-m", "pseudofs", "umount", mnt])
        for _ in range(50):
            if not os.path.ismount(mnt):
                break
            time.sleep(0.1)
        try:
            os.remove(cfg)
            os.rmdir(mnt)
            os.rmdir(tmp)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
