"""`pseudofs plot FILE -o OUT.png`: charts of what `pseudofs play --record` (RUN.jsonl) or
`pseudofs bench --json` wrote. matplotlib (Agg, no display) is the optional extra
`pseudofs[plot]`; without it this command says how to install it (docs/scenarios.md).

A run chart has one panel per node: that node's `percpu` (memory.numa_stat) stacked by cgroup,
each cgroup's own share (its hierarchical value less its children's), the containers of one
class (name-1, name-2 ...) as one band; then the memcg-wide total (memory.stat `percpu`)
against the per-node sum, both summed over the top-level cgroups, and their difference; then
each node's nr_percpu. A bench chart is the patch's table: seconds per pattern and mode, with
the standard deviation and the difference in %.
"""

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

INSTALL = ("pseudofs plot needs matplotlib: pip install 'pseudofs[plot]' "
           "(or pip install matplotlib)")
TOP = 7                            # cgroup bands per node panel; the rest is "other"


def load(path):
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get("kind") == "bench":
            return "bench", doc
    except json.JSONDecodeError:
        pass
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not rows or "nodes" not in rows[0]:
        raise ValueError(f"{path}: neither a `pseudofs play --record` run nor "
                         "`pseudofs bench --json` output")
    return "run", rows


def band(path: str) -> str:
    """/play/web-12 -> /play/web-*: the containers of one class share a band."""
    return re.sub(r"-\d+$", "-*", path)


def own_shares(cgroups: dict, node: str) -> dict:
    """Each non-root cgroup's own per-node percpu: its value less its direct children's."""
    val = {p: c.get("percpu", {}).get(node, 0) for p, c in cgroups.items() if p != "/"}
    own = dict(val)
    for p, v in val.items():
        parent = p.rsplit("/", 1)[0] or "/"
        if parent in own:
            own[parent] -= v
    return {p: max(0, v) for p, v in own.items()}


def run_series(rows):
    nodes = sorted({n for r in rows for c in r["cgroups"].values()
                    for n in c.get("percpu", {})}, key=int)
    xs = [r["s"] for r in rows]
    stacks = {}
    for n in nodes:
        per = defaultdict(lambda: [0] * len(rows))
        for i, r in enumerate(rows):
            for p, v in own_shares(r["cgroups"], n).items():
                per[band(p)][i] += v
        ranked = sorted(per, key=lambda b: -max(per[b]))
        keep = [b for b in ranked[:TOP] if max(per[b]) > 0]
        other = [sum(per[b][i] for b in ranked if b not in keep) for i in range(len(rows))]
        series = [(b, per[b]) for b in sorted(keep)]
        if any(other):
            series.append(("other", other))
        if series:                          # a node no cgroup was charged on gets no panel
            stacks[n] = series
    top = [[p for p in r["cgroups"] if p.count("/") == 1 and p != "/"] for r in rows]
    total = [sum(r["cgroups"][p]["percpu_total"] for p in t) for r, t in zip(rows, top)]
    nsum = [sum(sum(r["cgroups"][p].get("percpu", {}).values()) for p in t)
            for r, t in zip(rows, top)]
    nr = {n: [r["nodes"].get(n, {}).get("nr_percpu", 0) for r in rows]
          for n in sorted(rows[-1]["nodes"], key=int)
          if any("nr_percpu" in r["nodes"].get(n, {}) for r in rows)}
    if not nodes:                  # upstream accounting: no per-node percpu to sum
        nsum = None
    events = [(r["s"], d) for r in rows for d in r.get("done", []) if d.startswith("cpu")]
    return xs, stacks, total, nsum, nr, events


def plot_run(plt, rows, out, title):
    xs, stacks, total, nsum, nr, events = run_series(rows)
    panels = len(stacks) + 1 + bool(nr)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.6 * panels), sharex=True,
                             constrained_layout=True, squeeze=False)
    axes = list(axes[:, 0])
    for ax, (n, series) in zip(axes, stacks.items()):
        ax.stackplot(xs, *[v for _, v in series], labels=[b for b, _ in series], alpha=0.85)
        ax.legend(loc="upper left", fontsize=7, ncol=2)
        ax.set_ylabel(f"node {n} percpu\n(bytes)")
        ax.set_title(f"node {n}: memory.numa_stat percpu by cgroup (own share, stacked)",
                     fontsize=9)
    ax = axes[len(stacks)]
    ax.plot(xs, total, label="memcg-wide total (memory.stat percpu)", color="black")
    ax.set_ylabel("bytes")
    if nsum is None:
        ax.set_title("top-level cgroups: memory.stat percpu (upstream accounting: no per-node "
                     "percpu)", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    else:
        ax.plot(xs, nsum, label="per-node sum (memory.numa_stat percpu)", color="tab:orange",
                linestyle="--")
        ax.set_title("top-level cgroups: memcg-wide total against the per-node sum",
                     fontsize=9)
        twin = ax.twinx()
        twin.plot(xs, [a - b for a, b in zip(total, nsum)], color="tab:red", linewidth=0.8,
                  label="total - per-node sum")
        twin.set_ylabel("difference (bytes)", color="tab:red")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=7)
    if nr:
        ax = axes[-1]
        for n, v in nr.items():
            ax.plot(xs, v, label=f"node {n}")
        ax.set_ylabel("nr_percpu (pages)")
        ax.set_title("nodeN/vmstat nr_percpu", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    axes[-1].set_xlabel("scenario second")
    for s, what in events:
        for a in axes:
            a.axvline(s, color="grey", linewidth=0.6, linestyle=":")
        axes[-1].annotate(what, (s, 0), xycoords=("data", "axes fraction"), rotation=90,
                          fontsize=6, va="bottom", ha="right", color="grey")
    fig.suptitle(title)
    fig.savefig(out, dpi=100)


def plot_bench(plt, doc, out, title):
    times, labels = doc["times"], doc["labels"]
    patterns, modes = list(times), doc["modes"]
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    width = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        means = [statistics.mean(times[p][mode]) for p in patterns]
        sds = [statistics.stdev(times[p][mode]) if len(times[p][mode]) > 1 else 0
               for p in patterns]
        pos = [i + (j - (len(modes) - 1) / 2) * width for i in range(len(patterns))]
        ax.bar(pos, means, width, yerr=sds, capsize=4, label=labels[mode])
    for i, p in enumerate(patterns):         # the table's diff column, above the error bars
        a, b = (statistics.mean(times[p][m]) for m in modes)
        top = max(statistics.mean(times[p][m]) + (statistics.stdev(times[p][m])
                                                  if len(times[p][m]) > 1 else 0)
                  for m in modes)
        ax.annotate(f"diff {(b / a - 1) * 100:+.1f}%", (i, top), textcoords="offset points",
                    xytext=(0, 6), ha="center")
    ax.margins(y=0.15)
    ax.set_xticks(range(len(patterns)), patterns)
    ax.set_ylabel("seconds (mean +/- stddev)")
    ax.set_title(f"{doc['count']} accounted allocations of {doc['size']} B, "
                 f"{doc['trials']} trials per mode", fontsize=9)
    ax.legend()
    fig.suptitle(title)
    fig.savefig(out, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pseudofs plot", description=__doc__.split("\n\n")[0])
    p.add_argument("input", metavar="RUN.jsonl|BENCH.json")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png")
    p.add_argument("--title", help="the chart's title (default: the input's name)")
    args = p.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    try:
        kind, data = load(args.input)
    except (OSError, ValueError) as e:
        print(f"pseudofs plot: {e}", file=sys.stderr)
        return 2
    title = args.title or args.input
    (plot_run if kind == "run" else plot_bench)(plt, data, args.output, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
