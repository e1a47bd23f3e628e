"""`pseudofs check`: where the per-node sums and the memcg totals of a model disagree, why, and by
how much (README, "The two accounting modes"); then the model's
internal invariants. An explained disagreement is a finding; a broken invariant makes the model
unsound (exit 1).

    report = check(model)          # a live model
    print(report.text()); report.sound
"""

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List

from pseudofs.model.chunk import PCPU_MIN_ALLOC_SIZE
from pseudofs.model.kernel import OBJ_CGROUP_PTR, mult_frac


@dataclass
class Finding:
    kind: str       # rounding | offline-cpus | drift | memoryless | nr-units | first-chunk | stock
    where: str      # a cgroup path, "node N", "Percpu:"
    amount: int     # signed, in `unit`
    unit: str       # "B", "pages" or "kB"
    why: str

    def line(self) -> str:
        return f"  [{self.kind}] {self.where}: {self.amount:+d} {self.unit}: {self.why}"


INTRO = "where per-node sums and memcg totals disagree, and why:"
NOWHERE = "  nowhere: totals equal their parts"


@dataclass
class Report:
    header: str
    findings: List[Finding] = field(default_factory=list)
    broken: List[str] = field(default_factory=list)
    checked: int = 0

    @property
    def sound(self) -> bool:
        return not self.broken

    def text(self) -> str:
        out = [self.header, INTRO]
        out += [f.line() for f in self.findings] or [NOWHERE]
        if self.broken:
            out.append(f"UNSOUND: {len(self.broken)} of {self.checked} invariant checks fail:")
            out += ["  " + b for b in self.broken]
        else:
            out.append(f"sound: all {self.checked} invariant checks pass")
        return "\n".join(out) + "\n"


_FINDING = re.compile(r"  \[(?P<kind>[^\]]+)\] (?P<where>.*?): (?P<amount>[+-]\d+) (?P<unit>\S+): "
                      r"(?P<why>.*)")
_SOUND = re.compile(r"sound: all (\d+) invariant checks pass")
_UNSOUND = re.compile(r"UNSOUND: (\d+) of (\d+) invariant checks fail:")


def parse_report(text: str) -> Report:
    """The inverse of Report.text(): parse_report(r.text()).text() == r.text(). For readers of
    MNT/sys/kernel/debug/percpu_test/check (pseudofs.testing's Mount.check()). ValueError on
    text that Report.text() cannot have written."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or lines[1] != INTRO:
        raise ValueError("not the text of `pseudofs check`")
    rep = Report(lines[0])
    rest = lines[2:-1]
    if rest[:1] == [NOWHERE]:
        rest = rest[1:]
    while rest and rest[0].startswith("  "):
        m = _FINDING.fullmatch(rest.pop(0))
        if m is None:
            raise ValueError("not a finding line")
        rep.findings.append(Finding(m["kind"], m["where"], int(m["amount"]), m["unit"], m["why"]))
    head, broken = (rest[0], rest[1:]) if rest else ("", [])
    m = _SOUND.fullmatch(head) or _UNSOUND.fullmatch(head)
    if m is None:
        raise ValueError("no soundness line")
    rep.checked = int(m.groups()[-1])
    rep.broken = [b[2:] for b in broken]
    want = int(m[1]) if m.re is _UNSOUND else 0
    if len(broken) != want or any(not b.startswith("  ") for b in broken):
        raise ValueError("the broken invariants do not match their count")
    return rep


# --- what the model holds -------------------------------------------------------------------

def live_memcgs(model) -> list:
    return [c.memcg for c in [model.root, *model.root.descendants()] if c.memcg is not None]


def subtree(memcg) -> list:
    """The memcg and every live memcg below it."""
    return [memcg] + [c.memcg for c in memcg.cgroup.descendants() if c.memcg is not None]


def live_objects(model) -> list:
    """Every live PercpuObject: the percpu_test groups and the memcgs' own structures."""
    objs = [o for g in model.groups.groups.values() for o in g.objects]
    for m in live_memcgs(model):
        objs.extend(m.own_objects)
    return objs


def split_shortfall(k, size: int) -> Dict[str, int]:
    """F(size) minus the patch's per-node sum, split into its two integer causes:
    CPUs in no node mask (possible but offline or absent) and mult_frac rounding."""
    p, extra = k.topo.num_possible_cpus(), size // 4 * OBJ_CGROUP_PTR
    ns = [k.topo.nr_cpus_node(nid) for nid in k.topo.node_ids]
    total_n = sum(ns)
    offline = (p - total_n) * size + extra - mult_frac(extra, total_n, p)
    rounding = mult_frac(extra, total_n, p) - sum(mult_frac(extra, n, p) for n in ns if n)
    return {"offline-cpus": offline, "rounding": rounding}


def _subtree_sums(model, per_memcg: Dict[int, Dict], memcgs) -> Dict[int, Dict]:
    """Hierarchical sums: what each memcg's live objects add up to, added to every ancestor."""
    out: Dict[int, Dict] = {id(m): defaultdict(int) for m in memcgs}
    by_id = {id(m): m for m in memcgs}
    for mid, vals in per_memcg.items():
        for anc in by_id[mid].chain if mid in by_id else []:
            for key, v in vals.items():
                out[id(anc)][key] += v
    return out


# --- findings --------------------------------------------------------------------------------

def _memcg_findings(model, memcgs, sums, rep: Report) -> None:
    k, topo = model.kernel, model.topo
    for m in memcgs:
        s, path = sums[id(m)], m.cgroup.path
        if k.per_node:
            for kind in ("offline-cpus", "rounding"):
                if s[kind]:
                    why = ("possible CPUs in no node's mask (offline or not present) get no share "
                           "of S x P + 2S" if kind == "offline-cpus" else
                           "mult_frac(2S, n, P) floors each node's share of the 2S obj_exts extra")
                    rep.findings.append(Finding(kind, path + " percpu", -s[kind], "B", why))
            drift = m.stat("percpu") - s["charge_now"]
            if drift:
                rep.findings.append(Finding(
                    "drift", path + " percpu", drift, "B",
                    "CPU hotplug between allocation and free: the live objects, recomputed with "
                    "today's nr_cpus_node, would give %d" % s["charge_now"]))
            for nid in topo.node_ids:
                v = m.node_stat(nid)
                if v and not topo.has_memory(nid):
                    rep.findings.append(Finding(
                        "memoryless", f"{path} N{nid}", v, "B",
                        f"charged to CPU node {nid} without memory: in memory.stat, "
                        f"absent from memory.numa_stat"))
        held = []
        st = k.stocks
        if st.cached is m and st.nr_pages:
            held.append(f"{st.nr_pages} pages in the per-CPU page stock")
        if st.cached_objcg is not None and st.cached_objcg.memcg is m and st.nr_bytes:
            held.append(f"{st.nr_bytes} bytes in the per-CPU object stock")
        if held and not m.is_root():
            extra = m.memory.usage * k.page_size - m.stat("percpu")
            rep.findings.append(Finding(
                "stock", path + " memory.current", extra, "B",
                "memory.current minus percpu: whole pages and batches; " + ", ".join(held)))


def _node_findings(model, rep: Report) -> None:
    k, topo, pc = model.kernel, model.topo, model.kernel.pcpu
    p = topo.num_possible_cpus()
    dyn_pop = sum(c.nr_populated for c in pc.chunks() if not c.immutable)
    if k.per_node:
        n_sum = sum(topo.nr_cpus_node(nid) for nid in topo.node_ids)
        if n_sum < p and dyn_pop:
            rep.findings.append(Finding(
                "offline-cpus", "nr_percpu", -dyn_pop * (p - n_sum), "pages",
                f"pages are populated for all {p} possible CPUs, node stats count "
                f"{n_sum} CPUs in node masks"))
        for nid in topo.node_ids:
            now = dyn_pop * topo.nr_cpus_node(nid)
            got = k.nodestat.nr_percpu[nid]
            if got != now:
                rep.findings.append(Finding(
                    "drift", f"node {nid} nr_percpu", got - now, "pages",
                    f"CPU hotplug between populate and depopulate (today: {dyn_pop} populated "
                    f"pages x {topo.nr_cpus_node(nid)} CPUs = {now})"))
            if got and not topo.has_memory(nid):
                rep.findings.append(Finding(
                    "memoryless", f"node {nid} nr_percpu", got, "pages",
                    f"node {nid} has CPUs but no memory: its CPUs' pages came from node "
                    f"{(topo.fallback_order(nid) or ['-'])[0]}"))
    info = pc.info
    if info.nr_units > p:
        rep.findings.append(Finding(
            "nr-units", "Percpu:", pc.nr_populated * (info.nr_units - p) * k.page_size // 1024,
            "kB", f"Percpu: counts {info.nr_units} units, only {p} possible CPUs have pages"))
    first = pc.nr_populated - dyn_pop
    if k.per_node:
        rep.findings.append(Finding(
            "first-chunk", "Percpu:", first * info.nr_units * k.page_size // 1024, "kB",
            f"{first} pages per unit of the first/reserved chunk never go through populate: "
            f"in Percpu:, in no node's nr_percpu"))
    unacc = [o for g in model.groups.groups.values() for o in g.objects
             if o.chunk.immutable and g.account and g.objcg is not None]
    if unacc:
        rep.findings.append(Finding(
            "first-chunk", "objects", sum(k.pcpu_obj_full_size(o.size) for o in unacc), "B",
            f"{len(unacc)} accounted allocations landed in the first chunk (no obj_exts): "
            f"charge reverted, in no memcg"))


# --- invariants --------------------------------------------------------------------------------

def _invariants(model, memcgs, sums, objs, rep: Report) -> None:
    k, pc, topo, ps = model.kernel, model.kernel.pcpu, model.topo, model.kernel.page_size

    def need(ok: bool, what: str) -> None:
        rep.checked += 1
        if not ok:
            rep.broken.append(what)

    st = k.stocks
    chunks = pc.chunks()
    everything = chunks + ([pc.reserved_chunk] if pc.reserved_chunk else [])
    # the allocator agrees with the model's live objects
    claimed = defaultdict(set)
    for o in objs:
        need(o.chunk in everything and o.chunk.areas.get(o.bit_off, 0) * PCPU_MIN_ALLOC_SIZE
             == o.size, f"object of {o.size} B at chunk {o.chunk.id} bit {o.bit_off}: no such area")
        need(o.bit_off not in claimed[o.chunk.id], f"two objects claim chunk {o.chunk.id} bit "
             f"{o.bit_off}")
        claimed[o.chunk.id].add(o.bit_off)
    for c in chunks:
        if not c.immutable:
            need(len(c.areas) == len(claimed[c.id]), f"chunk {c.id}: {len(c.areas)} areas, "
                 f"{len(claimed[c.id])} live objects")
        need(c.nr_alloc == len(c.areas), f"chunk {c.id}: nr_alloc {c.nr_alloc} != areas")
        need(0 <= c.list_slot < len(pc.lists) and c in pc.lists[c.list_slot],
             f"chunk {c.id}: not on the slot list it records")
        need(c.nr_empty_pop_pages == c.empty_populated_pages(),
             f"chunk {c.id}: nr_empty_pop_pages {c.nr_empty_pop_pages} != "
             f"{c.empty_populated_pages()}")
        need(c.nr_populated == sum(c.populated), f"chunk {c.id}: nr_populated")
        map_bytes = (c.map_bits - c.start_bits - c.end_bits) * PCPU_MIN_ALLOC_SIZE
        need(c.free_bytes == map_bytes - sum(c.areas.values()) * PCPU_MIN_ALLOC_SIZE,
             f"chunk {c.id}: free_bytes {c.free_bytes}")
        if not c.immutable:
            need(all(sum(c.page_src[p].values()) == topo.num_possible_cpus()
                     for p in range(c.nr_pages) if c.populated[p]),
                 f"chunk {c.id}: a populated page lacks a copy for some possible CPU")
    need(pc.stats["nr_cur_alloc"] == sum(c.nr_alloc for c in everything),
         f"nr_cur_alloc {pc.stats['nr_cur_alloc']} != areas in chunks")
    need(pc.stats["nr_chunks"] == len(chunks), f"nr_chunks {pc.stats['nr_chunks']} != "
         f"{len(chunks)}")
    info = pc.info
    boot = (info.static_size + info.reserved_size + info.dyn_size) // ps   # pcpu_setup_first_chunk
    need(pc.nr_populated == boot + sum(c.nr_populated for c in chunks if not c.immutable),
         f"pcpu_nr_populated {pc.nr_populated} != {boot} boot pages + dynamic populated pages")
    need(pc.nr_empty_pop_pages == sum(c.nr_empty_pop_pages for c in chunks if not c.isolated),
         f"pcpu_nr_empty_pop_pages {pc.nr_empty_pop_pages} != sum over non-isolated chunks")
    # node memory: every page taken is a populated dynamic page
    used = defaultdict(int)
    for c in chunks:
        for src in c.page_src.values():
            for nid, n in src.items():
                used[nid] += n
    for nid in topo.node_ids:
        need(k.nodestat.used_pages(nid) == used[nid], f"node {nid}: pages used != pages held")
    # charges: kmem and the page counter account for every live byte, stock and remainder
    by_objcg, nobj = defaultdict(int), defaultdict(int)     # live bytes, objects per objcg
    for o in objs:
        if o.objcg is not None:
            by_objcg[id(o.objcg)] += k.pcpu_obj_full_size(o.size)
            nobj[id(o.objcg)] += 1
    live = {id(m) for m in memcgs}
    need(all(id(o.objcg.memcg) in live for o in objs if o.objcg is not None),
         "an object is charged to a memcg that is gone (not reparented)")
    for m in memcgs:
        charged = 0
        for sub in subtree(m):
            for oc in sub.objcg_list:
                held = oc.nr_charged_bytes + (st.nr_bytes if st.cached_objcg is oc else 0)
                charged += by_objcg[id(oc)] + held
                if sub is m:    # once per objcg: refcount, and whole pages charged through it
                    need(oc.nr_objects == nobj[id(oc)], f"{sub.cgroup.path}: objcg refcount")
                    need((by_objcg[id(oc)] + held) % ps == 0, f"{sub.cgroup.path}: an objcg's "
                         f"live bytes and precharged bytes are not whole pages")
        path = m.cgroup.path
        need(m.stat("kernel") * ps == charged, f"{path}: kernel {m.stat('kernel')} pages != "
             f"{charged} B charged to its objcgs")
        if not m.is_root():
            stock = st.nr_pages if st.cached is not None and st.cached.is_descendant_of(m) else 0
            need(m.memory.usage == m.stat("kernel") + stock, f"{path}: memory.current "
                 f"{m.memory.usage} pages != kernel {m.stat('kernel')} + stock {stock}")
        s = sums[id(m)]
        if k.per_node:
            need(m.stat("percpu") == sum(m.node_stat(n) for n in topo.node_ids),
                 f"{path}: percpu != sum of its per-node values")
            if topo.generation == 0:
                need(m.stat("percpu") == s["charge_now"], f"{path}: percpu {m.stat('percpu')} "
                     f"!= {s['charge_now']} from live objects (no hotplug happened)")
                for nid in topo.node_ids:
                    need(m.node_stat(nid) == s[("node", nid)], f"{path}: N{nid} percpu")
        else:
            need(m.stat("percpu") == s["full"], f"{path}: percpu {m.stat('percpu')} != "
                 f"{s['full']} (sum of pcpu_obj_full_size of live objects)")
    # node stats
    dyn_pop = sum(c.nr_populated for c in chunks if not c.immutable)
    for nid in topo.node_ids:
        want = dyn_pop * topo.nr_cpus_node(nid) if k.per_node else 0
        if topo.generation == 0 or not k.per_node:
            need(k.nodestat.nr_percpu[nid] == want, f"node {nid}: nr_percpu "
                 f"{k.nodestat.nr_percpu[nid]} != {want} (populated pages x nr_cpus_node)")


# --- entry points ------------------------------------------------------------------------------

def check(model) -> Report:
    k, topo = model.kernel, model.topo
    nodes = " ".join(f"N{nid}:{topo.nr_cpus_node(nid)}cpu"
                     + ("" if topo.has_memory(nid) else "(no memory)") for nid in topo.node_ids)
    rep = Report(f"pseudofs check: {model.config.source}: accounting={k.accounting}, "
                 f"{topo.num_possible_cpus()} possible CPUs, {nodes}, "
                 f"{k.pcpu.info.nr_units} units")
    memcgs = live_memcgs(model)
    objs = live_objects(model)
    per_memcg: Dict[int, Dict] = defaultdict(lambda: defaultdict(int))
    cache: Dict[int, tuple] = {}
    for o in objs:
        if o.objcg is None:
            continue
        if o.size not in cache:
            cache[o.size] = (k.pcpu_obj_full_size(o.size), k.node_charges(o.size),
                             split_shortfall(k, o.size))
        full, charges, short = cache[o.size]
        d = per_memcg[id(o.objcg.memcg)]
        d["full"] += full
        d["charge_now"] += sum(charges.values())
        for nid, v in charges.items():
            d[("node", nid)] += v
        for kind, v in short.items():
            d[kind] += v
    sums = _subtree_sums(model, per_memcg, memcgs)
    _memcg_findings(model, memcgs, sums, rep)
    _node_findings(model, rep)
    _invariants(model, memcgs, sums, objs, rep)
    return rep


CHECK_FILE = "/sys/kernel/debug/percpu_test/check"


def _print_mount(mnt: str) -> int:
    try:
        with open(mnt.rstrip("/") + CHECK_FILE) as f:
            text = f.read()
    except OSError as e:
        print(f"pseudofs check: {mnt}{CHECK_FILE}: {e.strerror}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0 if parse_report(text).sound else 1


def main(argv=None) -> int:
    from pseudofs.boot import build_model
    from pseudofs.config import load_config
    from pseudofs.errors import ConfigError
    p = argparse.ArgumentParser(prog="pseudofs check", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", help="YAML config (default: the built-in one)")
    p.add_argument("--mount", metavar="MNT", help="check the live model of the mount at MNT "
                   "(prints MNT%s)" % CHECK_FILE)
    args = p.parse_args(argv)
    if args.mount:
        return _print_mount(args.mount)
    try:
        model = build_model(load_config(args.config))
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    rep = check(model)
    sys.stdout.write(rep.text())
    return 0 if rep.sound else 1


if __name__ == "__main__":
    sys.exit(main())
