"""What the fault hooks cost on the read path: median open + read-to-end + close (and a stat)
of the root memory.stat on daemons mounted side by side, as ratios to the daemon with no plan:

  no plan           this tree, no fault plan (the hooks test one attribute per call)
  plan, no match    this tree, a 16-rule plan of every op whose globs match nothing read here
  plan, match       this tree, a rule that fires on every read of the file and changes
                    nothing (short_read: 65536): the cost of matching and the fault log
  before hooks      (with --baseline-src DIR) the same daemon from another source tree, e.g.
                    `git archive $(git merge-base main HEAD) | tar -x -C DIR`

Daemons and reader are pinned to CPU 0 (readbench.py's `same` placement: the spread between
CPUs is larger than what is measured here). Two daemons of one code differ by up to 10% here
(where each process's memory happens to lie), so each kind is mounted --daemons times and its
median is over all of them. The daemons are read in turn, --reads at a time, in a new random
order each of --rounds rounds.

    python3 bench/faultbench.py [--rounds 40] [--reads 50] [--daemons 3] [--baseline-src DIR]
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(HERE)
FILE = "sys/fs/cgroup/memory.stat"
CTL = "sys/kernel/debug/percpu_test/faults"
NO_MATCH = "rules:\n" + "".join(
    "  - {path: 'sys/fs/cgroup/nothing%d/**', op: %s, errno: EIO}\n" % (i, op)
    for i, op in enumerate(["getattr", "open", "read", "write", "readdir"] * 3 + ["read"]))
MATCH = "rules:\n  - {path: sys/fs/cgroup/memory.stat, short_read: 65536}\n"


def mount(src, mnt, log):
    os.makedirs(mnt, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=src)
    subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "pseudofs", "mount", mnt,
                    "--log-file", log], check=True, env=env)


def umount(mnt):
    subprocess.run([sys.executable, "-m", "pseudofs", "umount", mnt],
                   env=dict(os.environ, PYTHONPATH=TREE), capture_output=True)


def once(path):
    os.stat(path)
    with open(path, "rb", buffering=0) as f:
        while f.read(65536):
            pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--reads", type=int, default=50)
    p.add_argument("--daemons", type=int, default=3, help="daemons of each kind")
    p.add_argument("--baseline-src", metavar="DIR")
    a = p.parse_args(argv)
    os.sched_setaffinity(0, {0})
    tmp = tempfile.mkdtemp(prefix="faultbench-")
    targets = {"no plan": (TREE, None), "plan, no match": (TREE, NO_MATCH),
               "plan, match": (TREE, MATCH)}
    if a.baseline_src:
        targets["before hooks"] = (os.path.abspath(a.baseline_src), None)
    mnts = {}
    try:
        for name, (src, plan) in targets.items():
            for k in range(a.daemons):
                mnt = os.path.join(tmp, "m%d" % len(mnts))
                mount(src, mnt, mnt + ".log")
                mnts[(name, k)] = mnt
                if plan:
                    with open(os.path.join(mnt, CTL), "w") as f:
                        f.write(plan)
        times = {name: [] for name in targets}
        rng = random.Random(1)
        for _ in range(a.rounds):
            order = list(mnts)
            rng.shuffle(order)
            for key in order:
                name = key[0]
                path = os.path.join(mnts[key], FILE)
                for _ in range(a.reads):
                    t = time.perf_counter_ns()
                    once(path)
                    times[name].append(time.perf_counter_ns() - t)
        base = statistics.median(times["no plan"])
        print("stat + open + read + close of %s, %d x %d reads per daemon, %d daemons of "
              "each kind, pinned to CPU 0" % (FILE, a.rounds, a.reads, a.daemons))
        print("%-16s %10s %8s" % ("daemon", "median us", "ratio"))
        for name in targets:
            m = statistics.median(times[name])
            print("%-16s %10.1f %8.3f" % (name, m / 1000, m / base))
    finally:
        for mnt in mnts.values():
            umount(mnt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
