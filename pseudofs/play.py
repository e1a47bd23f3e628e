"""`pseudofs play MNT SCENARIO.yaml`: drive a mounted model through its own files, as a user's
programs would: mkdir/rmdir of cgroups, limit writes, percpu_test alloc/free lines, cpuN/online
(docs/scenarios.md). Scenario time is discrete: second s runs its events, the removals and
arrivals of containers, their allocations and frees, then (with --record) reads the figures
back. All randomness comes from one random.Random(seed), and CPUs are picked from what the
mount's own files list, so a seed on a fresh mount of one configuration gives the same figures.

Refusals the kernel would give are part of the game and counted, not raised: ENOMEM when an
allocation passes memory.max (or node memory), EBUSY for the last online CPU. Any other errno
is counted under its name and makes the exit status 1.
"""

import argparse
import errno
import json
import math
import os
import random
import signal
import sys
import time

from pseudofs import kparse
from pseudofs.errors import ConfigError
from pseudofs.scenario import load_scenario

CG = "sys/fs/cgroup"
PCT = "sys/kernel/debug/percpu_test"
CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
EXPECTED = {"ENOMEM", "EBUSY"}


def poisson(rng, mean: float) -> int:
    """Knuth's method: fine for the small means of a scenario second."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Container:
    def __init__(self, cls, path: str, end: float):
        self.cls, self.path, self.end = cls, path, end
        self.tags = []            # live allocation groups, oldest first
        self.seq = 0


class Player:
    def __init__(self, mnt: str, scenario, seed: int, record=None):
        self.mnt = mnt.rstrip("/")
        self.sc = scenario
        self.rng = random.Random(seed)
        self.record = record
        self.alive = []
        self.numbers = {c.name: 0 for c in scenario.containers}
        self.limits = {c.name: dict(c.limits) for c in scenario.containers}
        self.returns = []          # (second, cpu) the scenario brings back online
        self.counts = {}
        self.run_tag = None

    # --- files -----------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return os.path.join(self.mnt, rel)

    def read(self, rel: str) -> str:
        with open(self.path(rel)) as f:
            return f.read()

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def op(self, what: str, fn, *args) -> bool:
        """Run one system call; True if it worked. A refusal is counted under its errno."""
        try:
            fn(*args)
        except OSError as e:
            self.count(errno.errorcode.get(e.errno, str(e.errno)))
            return False
        self.count(what)
        return True

    def write(self, rel: str, line: str) -> None:
        with open(self.path(rel), "w") as f:
            f.write(line + "\n")

    def cpus(self, which: str):
        return set(kparse.parse_cpulist(self.read(f"{CPU}/{which}").strip()))

    # --- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        parts = [p for p in self.sc.parent.split("/") if p]
        rel = CG
        for part in parts + [None]:        # memory enabled down to the parent's children
            ctl = rel + "/cgroup.subtree_control"
            if "memory" not in self.read(ctl).split():
                self.write(ctl, "+memory")
            if part is None:
                break
            rel += "/" + part
            if not os.path.isdir(self.path(rel)):
                os.mkdir(self.path(rel))
        # tags are global: one prefix per run, unused by what the mount holds already
        used = {line.split()[0][4:].split(".")[0]
                for line in self.read(PCT + "/alloc").splitlines() if line.startswith("tag=")}
        n = 1
        while f"p{n}" in used:
            n += 1
        self.run_tag = f"p{n}"

    # --- one scenario second ---------------------------------------------------------------------
    def tick(self, s: int) -> list:
        done = []
        for second, cpu in [r for r in self.returns if r[0] <= s]:
            self.returns.remove((second, cpu))
            if self.op("cpu_online", self.write, f"{CPU}/cpu{cpu}/online", "1"):
                done.append(f"cpu{cpu} online")
        for ev in self.sc.due(s):
            done += self.event(ev, s)
        for c in [c for c in self.alive if c.end <= s]:
            self.remove(c)
            done.append(f"rmdir {c.path}")
        for cls in self.sc.containers:
            alive = sum(1 for c in self.alive if c.cls is cls)
            for _ in range(min(poisson(self.rng, cls.arrival), cls.max_alive - alive)):
                c = self.create(cls, s)
                if c:
                    done.append(f"mkdir {c.path}")
        for c in list(self.alive):
            a = c.cls.allocations
            for _ in range(poisson(self.rng, a.rate)):
                self.alloc(c, a.size.draw(self.rng), a.count.draw(self.rng), a.align)
            for _ in range(poisson(self.rng, a.frees)):
                if c.tags:
                    tag = c.tags.pop(0)
                    self.op("free", self.write, PCT + "/free", f"tag={tag}")
        return done

    def create(self, cls, s: int):
        while True:
            self.numbers[cls.name] += 1
            rel = f"{self.sc.parent}/{cls.name}-{self.numbers[cls.name]}"
            if not os.path.exists(self.path(CG + rel)):
                break
        lifetime = cls.lifetime.draw(self.rng)
        if not self.op("mkdir", os.mkdir, self.path(CG + rel)):
            return None
        for name, value in self.limits[cls.name].items():
            self.op("limit", self.write, f"{CG}{rel}/{name}", value)
        c = Container(cls, rel, s + lifetime)
        self.alive.append(c)
        return c

    def alloc(self, c, size: int, count: int, align: int) -> bool:
        c.seq += 1
        tag = f"{self.run_tag}.{c.path.rsplit('/', 1)[1]}.{c.seq}"
        ok = self.op("alloc", self.write, PCT + "/alloc",
                     f"size={size} count={count} align={align} cgroup={c.path} tag={tag}")
        if ok:
            c.tags.append(tag)
        return ok

    def remove(self, c) -> None:
        self.alive.remove(c)
        if c.tags and self.rng.random() >= c.cls.leak:
            self.op("free", self.write, PCT + "/free", f"cgroup={c.path}")
        elif c.tags:
            self.count("leaked", len(c.tags))      # reparented to the parent's memcg
        self.op("rmdir", os.rmdir, self.path(CG + c.path))

    def event(self, ev, s: int) -> list:
        if ev.action == "cpu_offline":
            online = sorted(self.cpus("online"))
            # cpu0 has no online file on x86; the last online CPU cannot go (EBUSY)
            pick = [c for c in online if c != 0 and
                    os.path.exists(self.path(f"{CPU}/cpu{c}/online"))]
            if len(online) < 2 or not pick:
                self.count("cpu_offline_skipped")
                return []
            cpu = self.rng.choice(pick)
            if not self.op("cpu_offline", self.write, f"{CPU}/cpu{cpu}/online", "0"):
                return []
            if ev.for_s is not None:
                self.returns.append((s + ev.for_s, cpu))
            return [f"cpu{cpu} offline"]
        if ev.action == "cpu_online":
            down = sorted(self.cpus("present") - self.cpus("online"))
            if not down:
                self.count("cpu_online_skipped")
                return []
            cpu = self.rng.choice(down)
            self.returns = [r for r in self.returns if r[1] != cpu]
            ok = self.op("cpu_online", self.write, f"{CPU}/cpu{cpu}/online", "1")
            return [f"cpu{cpu} online"] if ok else []
        mine = [c for c in self.alive if c.cls.name == ev.container]
        if ev.action == "set":
            self.limits[ev.container].update(ev.files)
            for c in mine:
                for name, value in ev.files:
                    self.op("limit", self.write, f"{CG}{c.path}/{name}", value)
            return [f"set {ev.container} " + " ".join(f"{k}={v}" for k, v in ev.files)]
        if not mine:                                     # burst
            return []
        c = self.rng.choice(mine)
        size = ev.size.draw(self.rng)
        for n in range(ev.tries):
            if not self.alloc(c, size, ev.count.draw(self.rng), 8):
                self.count("burst_stopped")
                return [f"burst {c.path} stopped after {n}"]
        return [f"burst {c.path} {ev.tries}"]

    # --- figures read back -------------------------------------------------------------------------
    def figures(self, s: int, done: list) -> dict:
        nodes = {}
        for nid in sorted(kparse.parse_cpulist(self.read(f"{NODE}/online").strip())):
            vm = dict(line.split() for line in self.read(f"{NODE}/node{nid}/vmstat")
                      .splitlines())
            nodes[str(nid)] = {k: int(vm[k]) for k in ("nr_percpu", "nr_free_pages") if k in vm}
        cgroups = {}
        for dirpath, dirs, files in os.walk(self.path(CG)):
            dirs.sort()
            if "memory.stat" not in files:
                continue
            rel = "/" + os.path.relpath(dirpath, self.path(CG)).lstrip(".")
            base = dirpath[len(self.mnt) + 1:]
            try:
                cg = self.cgroup_figures(base, "memory.current" in files)
            except FileNotFoundError:           # removed meanwhile (not by us)
                continue
            cgroups[rel.rstrip("/") or "/"] = cg
        return {"s": s, "t": round(time.time(), 3), "online": self.read(f"{CPU}/online")
                .strip(), "alive": len(self.alive), "done": done, "nodes": nodes,
                "cgroups": cgroups, "counts": dict(sorted(self.counts.items()))}

    def cgroup_figures(self, base: str, has_current: bool) -> dict:
        stat = dict(line.split() for line in self.read(base + "/memory.stat").splitlines())
        out = {"percpu_total": int(stat.get("percpu", 0))}
        for line in self.read(base + "/memory.numa_stat").splitlines():
            key, *nodes = line.split()
            if key == "percpu":
                out["percpu"] = {n.split("=")[0][1:]: int(n.split("=")[1]) for n in nodes}
        if has_current:
            out["current"] = int(self.read(base + "/memory.current"))
        return out

    # --- the run ----------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Free, remove and bring back online what the scenario changed."""
        for c in list(self.alive):
            self.alive.remove(c)
            if c.tags:
                self.op("free", self.write, PCT + "/free", f"cgroup={c.path}")
            self.op("rmdir", os.rmdir, self.path(CG + c.path))
        if any(line.split()[1] == "cgroup=" + self.sc.parent
               for line in self.read(PCT + "/alloc").splitlines()):
            self.op("free", self.write, PCT + "/free", f"cgroup={self.sc.parent}")  # leaks
        for _, cpu in self.returns:
            self.op("cpu_online", self.write, f"{CPU}/cpu{cpu}/online", "1")
        self.returns = []

    def run(self, duration: int, speed: float, stop=lambda: False) -> None:
        self.setup()
        start = time.monotonic()
        for s in range(duration):
            wait = start + s / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if stop():
                break
            done = self.tick(s)
            if self.record is not None:
                self.record.write(json.dumps(self.figures(s, done), sort_keys=True) + "\n")
                self.record.flush()


def unexpected(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k.isupper() and k not in EXPECTED}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pseudofs play", description=__doc__.split("\n\n")[0])
    p.add_argument("mountpoint", metavar="MNT")
    p.add_argument("scenario", metavar="SCENARIO.yaml")
    p.add_argument("--speed", type=float, default=1.0,
                   help="scenario seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--duration", type=int, metavar="S",
                   help="scenario seconds to play (default: the scenario's)")
    p.add_argument("--record", metavar="RUN.jsonl",
                   help="one JSON line per scenario second: the figures read back")
    p.add_argument("--keep", action="store_true",
                   help="leave the containers, allocations and offline CPUs at the end")
    args = p.parse_args(argv)
    if args.speed <= 0 or (args.duration is not None and args.duration < 1):
        p.error("--speed must be positive and --duration at least 1")
    try:
        sc = load_scenario(args.scenario)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(args.mountpoint, PCT, "alloc")):
        print(f"pseudofs play: {args.mountpoint} is not a pseudofs mount", file=sys.stderr)
        return 2
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(1))
    record = open(args.record, "w") if args.record else None
    seed = sc.seed if args.seed is None else args.seed
    player = Player(args.mountpoint, sc, seed, record)
    try:
        player.run(args.duration or sc.duration, args.speed, lambda: bool(stopping))
        if not args.keep:
            player.cleanup()
    except OSError as e:        # the mount itself failed (gone, not ours): nothing to count
        print(f"pseudofs play: {e}", file=sys.stderr)
        return 1
    finally:
        if record:
            record.close()
    counts = player.counts
    print("pseudofs play: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bad = unexpected(counts)
    if bad:
        print(f"pseudofs play: unexpected refusals: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
