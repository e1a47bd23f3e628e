"""`pseudofs bench`: the patch's experiment on the model. N accounted percpu allocations of S
bytes in a cgroup, batched (N allocations, then N frees) and interleaved (allocate, free, ...),
timed for both accounting modes in one process, trial by trial in alternating order; then the
kernel memory the per-node counters cost: 16 bytes x possible CPUs x possible nodes x memcgs.

The timed loop calls the model's kernel entry points (Kernel.pcpu_alloc / pcpu_free with the
cgroup's obj_cgroup), not the control-file parser. As timeit does, the garbage collector is off
while a run is timed. The deferred work (balance) runs after each timed run, untimed, as the
kernel runs it in a worker.
"""

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from typing import Callable, Dict, List

MODES = ("memcg", "per-node")            # upstream, the patch
LABELS = {"memcg": "memcg (upstream)", "per-node": "per-node (patch)"}
PATTERNS = ("batched", "interleaved")
PER_NODE_COUNTER_BYTES = 16              # two longs per (memcg, node, CPU): the commit message


def counter_cost(model) -> Dict[str, int]:
    """The patch's extra per-CPU lruvec stat: 16 B x possible CPUs x possible nodes x memcgs."""
    memcgs = sum(1 for c in [model.root, *model.root.descendants()] if c.memcg is not None)
    cpus, nodes = model.topo.num_possible_cpus(), len(model.topo.node_ids)
    return {"cpus": cpus, "nodes": nodes, "memcgs": memcgs,
            "bytes": PER_NODE_COUNTER_BYTES * cpus * nodes * memcgs}


def pick_cgroup(model, path):
    """The named cgroup, else the first one with its own memcg, else a new /bench."""
    if path:
        return model.lookup(path)
    for c in model.root.descendants():
        if c.memcg is not None:
            return c
    if "memory" not in model.root.subtree_control:
        model.subtree_control(model.root, {"memory"}, set())
    return model.mkdir("/bench")


def batched(k, objcg, count: int, size: int, align: int) -> float:
    alloc, free = k.pcpu_alloc, k.pcpu_free
    t0 = time.perf_counter()
    objs = [alloc(size, align, objcg) for _ in range(count)]
    for obj in objs:
        free(obj)
    return time.perf_counter() - t0


def interleaved(k, objcg, count: int, size: int, align: int) -> float:
    alloc, free = k.pcpu_alloc, k.pcpu_free
    t0 = time.perf_counter()
    for _ in range(count):
        free(alloc(size, align, objcg))
    return time.perf_counter() - t0


RUNS: Dict[str, Callable] = {"batched": batched, "interleaved": interleaved}


def timed(setup, pattern: str, count: int, size: int, align: int) -> float:
    model, cg = setup
    k, memcg = model.kernel, cg.memcg if cg.memcg is not None else cg.nearest_memcg()
    before = memcg.stat("percpu")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t = RUNS[pattern](k, memcg.objcg, count, size, align)
    finally:
        if gc_was:
            gc.enable()
    k.end_of_command()
    assert memcg.stat("percpu") == before, "a run did not uncharge what it charged"
    return t


def write_json(path, config, times, cost, trials, count, size, align, cgroup) -> None:
    """The run as one JSON document, for `pseudofs plot` (every trial's seconds)."""
    import json
    doc = {"kind": "bench", "config": config.source, "modes": list(MODES), "labels": LABELS,
           "trials": trials, "count": count, "size": size, "align": align, "cgroup": cgroup,
           "times": times, "counter_cost": cost}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def run(config, trials: int, count: int, size: int, align: int, cgroup=None,
        out=None, json_path=None) -> Dict[str, Dict[str, List[float]]]:
    from pseudofs.boot import build_model
    out = out or sys.stdout
    setups, cost = {}, None
    for mode in MODES:
        cfg = dataclasses.replace(config, kernel=dataclasses.replace(config.kernel,
                                                                     accounting=mode))
        model = build_model(cfg)
        cost = cost or counter_cost(model)
        setups[mode] = (model, pick_cgroup(model, cgroup))
    path = setups["per-node"][1].path
    print(f"pseudofs bench: {config.source}: {cost['cpus']} possible CPUs, {cost['nodes']} "
          f"nodes, {cost['memcgs']} memcgs", file=out)
    print(f"{count} accounted allocations of {size} B (align {align}) in {path}, {trials} "
          f"trials per mode, modes alternating, time.perf_counter, gc off while timed", file=out)
    for mode in MODES:                           # warm-up: chunks created, pages populated
        for pattern in PATTERNS:
            timed(setups[mode], pattern, count, size, align)
    times = {p: {m: [] for m in MODES} for p in PATTERNS}
    for trial in range(trials):
        order = MODES if trial % 2 == 0 else MODES[::-1]
        for pattern in PATTERNS:
            for mode in order:
                times[pattern][mode].append(timed(setups[mode], pattern, count, size, align))
        if sys.stderr.isatty():
            print(f"  trial {trial + 1}/{trials}", file=sys.stderr, end="\r", flush=True)
    if sys.stderr.isatty():
        print(" " * 20, file=sys.stderr, end="\r", flush=True)
    print(table(times), file=out)
    if json_path:
        write_json(json_path, config, times, cost, trials, count, size, align, path)
    print(f"per-node counters: {PER_NODE_COUNTER_BYTES} B x {cost['cpus']} CPUs x "
          f"{cost['nodes']} nodes x {cost['memcgs']} memcgs = {cost['bytes']} bytes "
          f"({cost['bytes'] / 1024:.1f} KiB)", file=out)
    from pseudofs.check import check
    for mode in MODES:
        rep = check(setups[mode][0])
        if not rep.sound:
            print(f"model unsound after the runs ({mode}):\n{rep.text()}", file=out)
    return times


def _ms(xs: List[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):8.4f} +/- {sd:6.4f}"


def table(times: Dict[str, Dict[str, List[float]]]) -> str:
    """One row per pattern: mean +/- stddev seconds per mode, the diff of the means in %, and
    the mean +/- stddev of the per-trial paired ratios (per-node / memcg - 1)."""
    head = (f"{'':12} {LABELS['memcg'] + ' s':>24} {LABELS['per-node'] + ' s':>24} "
            f"{'diff':>8} {'paired diff':>18}")
    rows = [head, "-" * len(head)]
    for pattern, t in times.items():
        mc, pn = t["memcg"], t["per-node"]
        diff = (statistics.mean(pn) / statistics.mean(mc) - 1) * 100
        ratios = [(b / a - 1) * 100 for a, b in zip(mc, pn)]
        sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
        rows.append(f"{pattern:12} {_ms(mc):>24} {_ms(pn):>24} {diff:+7.2f}% "
                    f"{statistics.mean(ratios):+8.2f}% +/- {sd:5.2f}")
    return "\n".join(rows)


def main(argv=None) -> int:
    from pseudofs.config import load_config
    from pseudofs.errors import ConfigError, ModelError
    p = argparse.ArgumentParser(prog="pseudofs bench", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", help="YAML config (default: the built-in one)")
    p.add_argument("--trials", type=int, default=20, help="trials per mode (default 20)")
    p.add_argument("--count", type=int, default=100000, help="allocations (default 100000)")
    p.add_argument("--size", type=int, default=8, help="bytes per allocation (default 8)")
    p.add_argument("--align", type=int, default=8, help="alignment (default 8)")
    p.add_argument("--cgroup", help="cgroup path (default: the first with its own memcg)")
    p.add_argument("--json", metavar="FILE", help="also write every trial's times to FILE "
                   "(JSON, for `pseudofs plot`)")
    args = p.parse_args(argv)
    if args.trials < 1 or args.count < 1:
        p.error("--trials and --count must be at least 1")
    try:
        run(load_config(args.config), args.trials, args.count, args.size, args.align,
            args.cgroup, json_path=args.json)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    except ModelError as e:
        print(f"pseudofs bench: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
