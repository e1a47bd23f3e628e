"""The config checker behind config.parse_config: builds the dataclasses of config_schema.py from
the YAML node tree and checks them (ranges, cross-references, what the kernel refuses)."""

import yaml

from .config_schema import (CLOCK_MODES, AllocConfig, CgroupConfig, Config, KernelConfig,
                            NodeConfig, PercpuConfig, TopologyConfig)
from .config_yaml import BAD, NULL_TAG, YamlReader, pow2
from .errors import ConfigError, ModelError
from .files.cgroup import CONFIG_FILES
from .kparse import format_cpulist
from .model.alloc_groups import MAX_COUNT as ALLOC_MAX_COUNT
from .model.chunk import PCPU_MIN_ALLOC_SIZE
from .model.kernel import ACCOUNTING_MODES
from .model.topology import LOCAL_DISTANCE, MAX_NR_CPUS, MAX_NUMNODES
from .model.units import PCPU_MIN_UNIT_SIZE as ALLOC_MAX_SIZE
from .model.units import PCPU_UNIT_LIMIT, PERCPU_DYNAMIC_EARLY_SIZE
from .render.kconfig import OPTIONS, VERSIONS
from .files.cftype_gates import GATED_NAMES, cgroup_file_exists
from .render.profile import make_profile


def _cpus(cpus):
    """ "CPU 5" or "CPUs 8-9,12" for a message."""
    return f"CPU {format_cpulist(cpus)}" if len(cpus) == 1 else f"CPUs {format_cpulist(cpus)}"


def _at(m, key):
    """The YAML value node of `key` in a key map, None when the key was not written."""
    return m[key][1] if key in m else None


class Checker(YamlReader):

    def run(self, text) -> Config:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = f", line {mark.line + 1}" if mark else ""
            raise ConfigError([f"{self.source}{line}: YAML syntax error: {e.problem}"]) from None
        except yaml.YAMLError as e:
            raise ConfigError([f"{self.source}: YAML error: {e}"]) from None
        top = self.mapping(root, "", ("kernel", "topology", "percpu", "root_subtree_control",
                                      "cgroups", "faults"))
        kernel = self.kernel(top)
        topology = self.topology(top, kernel)
        percpu = self.percpu(top, kernel.page_size)
        root_ctl = self.field(top, "root_subtree_control", self.controllers, "", ("memory",))
        cgroups = self.cgroups(top, kernel.page_size, root_ctl)
        faults = self.faults(top, text)
        if self.problems:
            raise ConfigError([m for *_, m in sorted(self.problems)])
        return Config(self.source, kernel, topology, percpu, cgroups, root_ctl, faults)

    def faults(self, top, text):
        """The `faults:` section: a fault plan, checked by pseudofs/faults/plan.py."""
        if "faults" not in top:
            return None
        from .faults.plan import PlanError, parse_plan
        node = top["faults"][1]
        try:
            return parse_plan((yaml.safe_load(text) or {}).get("faults"))
        except PlanError as e:
            self.err(node, "faults", str(e))
            return None

    def kernel(self, top):
        d = KernelConfig()
        keys = ("accounting", "page_size", "nr_cpus", "version", "config", "clock")
        m = self.mapping(top["kernel"][1], "kernel", keys) if "kernel" in top else {}
        acc = self.field(m, "accounting", self.string, "kernel", d.accounting)
        if acc not in ACCOUNTING_MODES:
            self.err(m["accounting"][1], "kernel.accounting",
                     f"must be one of {', '.join(ACCOUNTING_MODES)}, got {acc!r}")
            acc = d.accounting
        ps = self.field(m, "page_size", self.size, "kernel", d.page_size)
        if not pow2(ps) or not 4096 <= ps <= 262144:
            self.err(m["page_size"][1], "kernel.page_size",
                     f"must be a power of two from 4096 to 256K (PAGE_SHIFT 12..18), got {ps}")
            ps = d.page_size
        self.nr_cpus_node = m["nr_cpus"][1] if "nr_cpus" in m else None
        nr = self.field(m, "nr_cpus", self.integer, "kernel", d.nr_cpus, 1, MAX_NR_CPUS)
        version, options = self.kernel_profile(m, d)
        clock = self.field(m, "clock", self.string, "kernel", None)
        if clock is not None and clock not in CLOCK_MODES:
            self.err(m["clock"][1], "kernel.clock",
                     f"must be one of {', '.join(CLOCK_MODES)}, got {clock!r}")
            clock = None
        return KernelConfig(acc, ps, nr, version, options, clock)

    def kernel_profile(self, m, d):
        """kernel.version (one of VERSIONS, read as typed: 6.10 is not 6.1) and kernel.config
        ({option: bool}; an unknown option is an error, one the version lacks is not)."""
        version = d.version
        if "version" in m:
            text = self.raw(m["version"][1], "kernel.version")
            if text in VERSIONS:
                version = text
            elif text is not BAD:
                self.err(m["version"][1], "kernel.version",
                         f"must be one of {', '.join(VERSIONS)}, got {text!r}")
        options = []
        if "config" in m:
            cm = self.mapping(m["config"][1], "kernel.config", tuple(OPTIONS))
            for name, (_, vnode) in cm.items():
                on = self.boolean(vnode, "kernel.config." + name)
                if on is not BAD:
                    options.append((name, on))
        self.profile = make_profile(version, dict(options))
        return version, tuple(options)

    def check_profile_file(self, knode, path, name):
        """A cgroup file the kernel profile does not have (memory.swap.* without swap, ...)."""
        if name in GATED_NAMES and not cgroup_file_exists(name, False, self.profile):
            self.err(knode, f"{path}.{name}", "no such file with this kernel.version and "
                     "kernel.config")

    dropped_nodes = False

    def topology(self, top, kernel):
        keys = ("nodes", "possible_cpus", "online_cpus")
        m = self.mapping(top["topology"][1], "topology", keys) if "topology" in top else {}
        if "nodes" in m:
            items = self.sequence(m["nodes"][1], "topology.nodes")
            if not items:
                self.err(m["nodes"][1], "topology.nodes", "at least one node is needed")
            nodes = [n for i, item in enumerate(items)
                     for n in self.node(item, f"topology.nodes[{i}]")]
        else:
            nodes = [(n, {}, "topology.nodes") for n in TopologyConfig().nodes]
        sets = {k: self.field(m, k, self.cpulist, "topology", None)
                if k in m and m[k][1].tag != NULL_TAG else None for k in keys[1:]}
        topo = TopologyConfig(tuple(n for n, _, _ in nodes), **sets)
        lists = self.check_nodes(topo, nodes, m.get("nodes", (None, None))[1], kernel.page_size)
        self.check_cpu_sets(topo, nodes, m, kernel, lists)
        return topo

    def node(self, item, path):
        """[(NodeConfig, key map, path)], or [] when the node is too broken to use."""
        nm = self.mapping(item, path, ("id", "cpus", "hotplug_cpus", "memory", "distance"))
        nid = BAD
        if "id" in nm:
            nid = self.integer(nm["id"][1], path + ".id", 0, MAX_NUMNODES - 1)
        elif isinstance(item, yaml.MappingNode):
            self.err(item, path, "missing key 'id'")
        if nid is BAD:
            self.dropped_nodes = True
            return []
        dist = None
        if "distance" in nm and nm["distance"][1].tag != NULL_TAG:
            row = [self.integer(n, path + ".distance", 0, 255)
                   for n in self.sequence(nm["distance"][1], path + ".distance")]
            dist = None if BAD in row else tuple(row)
        return [(NodeConfig(
            nid, self.field(nm, "cpus", self.cpulist, path, frozenset()),
            self.field(nm, "hotplug_cpus", self.cpulist, path, frozenset()),
            self.field(nm, "memory", self.size, path, NodeConfig(0).memory), dist), nm, path)]

    def check_nodes(self, topo, nodes, nodes_node, page_size):
        """Ids, one node per CPU, memory, distances; -> [(cpus, yaml node, key path)]."""
        ids, owner, lists = {}, {}, []
        for node, nm, path in nodes:
            if node.id in ids:
                self.err(_at(nm, "id"), path + ".id",
                         f"node id {node.id} already used by {ids[node.id]}")
            ids.setdefault(node.id, path)
            for key in ("cpus", "hotplug_cpus"):
                cpus = getattr(node, key)
                dup = {c for c in cpus if c in owner}
                if dup:
                    self.err(_at(nm, key), f"{path}.{key}", f"{_cpus(dup)}: already "
                             f"listed in {owner[min(dup)]} (a CPU belongs to one node)")
                for c in cpus:
                    owner.setdefault(c, f"{path}.{key}")
                lists.append((cpus, _at(nm, key), f"{path}.{key}"))
            if node.memory % page_size:
                self.err(_at(nm, "memory"), path + ".memory", f"{node.memory} bytes is not a "
                         f"whole number of {page_size}-byte pages")
            if not node.cpus and not node.hotplug_cpus and not node.memory:
                self.err(_at(nm, "id"), path, "node has neither CPUs nor memory")
        if nodes and not self.dropped_nodes and not any(n.memory for n in topo.nodes):
            self.err(nodes_node, "topology.nodes", "no node has memory")
        order = sorted(ids)
        for node, nm, path in nodes:
            row, where, dpath = node.distance, _at(nm, "distance"), path + ".distance"
            if row is not None and len(row) != len(order):
                self.err(where, dpath, f"needs {len(order)} entries (one per node, ascending "
                         f"id), got {len(row)}")
                continue
            for nid, d in zip(order, row or ()):
                if nid == node.id and d != LOCAL_DISTANCE:
                    self.err(where, dpath, f"distance to itself (node {nid}) must be "
                             f"{LOCAL_DISTANCE} (LOCAL_DISTANCE), got {d}")
                elif nid != node.id and not LOCAL_DISTANCE < d <= 255:
                    self.err(where, dpath, f"distance to node {nid} must be 11..255, got {d}")
        return lists

    def check_cpu_sets(self, topo, nodes, m, kernel, lists):
        """possible ⊇ listed, online ⊆ present, CPU 0 present and online, all < nr_cpus.
        With a node or a CPU list already refused, only the checks that cannot follow from
        that refusal are made."""
        complete = bool(nodes) and not self.dropped_nodes and not self.bad_cpulists
        present = topo.present
        listed = present.union(*(n.hotplug_cpus for n in topo.nodes))
        possible_node, online_node = _at(m, "possible_cpus"), _at(m, "online_cpus")
        if topo.possible_cpus is not None:
            lists.append((topo.possible_cpus, possible_node, "topology.possible_cpus"))
            if not listed <= topo.possible_cpus:
                self.err(possible_node, "topology.possible_cpus", "must include every CPU the "
                         "nodes list (cpus and hotplug_cpus); missing "
                         + format_cpulist(listed - topo.possible_cpus))
        if topo.online_cpus is not None:
            lists.append((topo.online_cpus, online_node, "topology.online_cpus"))
            if complete and not topo.online_cpus <= present:
                self.err(online_node, "topology.online_cpus",
                         f"{_cpus(topo.online_cpus - present)}: online but not present "
                         "(in no node's cpus)")
        if complete and 0 not in present:
            self.err(_at(m, "nodes"), "topology.nodes",
                     "CPU 0 (the boot CPU) must be in some node's cpus")
        elif complete and 0 not in topo.online:
            self.err(online_node, "topology.online_cpus",
                     "CPU 0 (the boot CPU, no online file on x86) must be online")
        nr, beyond_default = kernel.nr_cpus, False
        for cpus, where, path in lists:
            too = {c for c in cpus if c >= nr}
            if too and where is None:
                beyond_default = True
            elif too:
                self.err(where, path, f"{_cpus(too)}: beyond kernel.nr_cpus = {nr} "
                         f"(CPU ids run 0..{nr - 1})")
        if beyond_default:
            self.err(self.nr_cpus_node, "kernel.nr_cpus", f"{nr} is too small for the default "
                     f"topology's highest CPU {max(topo.possible)}")

    def percpu(self, top, page_size):
        d = PercpuConfig()
        keys = ("static_size", "reserved_size", "dyn_size", "atom_size", "first_chunk_free")
        m = self.mapping(top["percpu"][1], "percpu", keys) if "percpu" in top else {}
        v = {k: self.field(m, k, self.size, "percpu", getattr(d, k), 0, PCPU_UNIT_LIMIT)
             for k in keys}

        def bad(key, msg):
            self.err(m[key][1] if key in m else None, "percpu." + key, msg)
            v[key] = getattr(d, key)
        if v["static_size"] == 0:
            bad("static_size", "must be > 0 (pcpu_setup_first_chunk refuses an empty static area)")
        if v["reserved_size"] % PCPU_MIN_ALLOC_SIZE:
            bad("reserved_size", f"must be a multiple of {PCPU_MIN_ALLOC_SIZE}")
        if not pow2(v["atom_size"]) or v["atom_size"] < page_size:
            bad("atom_size", f"must be a power of two >= the page size {page_size}")
        dyn_req = max(v["dyn_size"], PERCPU_DYNAMIC_EARLY_SIZE)
        total = v["static_size"] + v["reserved_size"] + dyn_req
        if total > PCPU_UNIT_LIMIT:
            bad("dyn_size", f"static + reserved + dynamic = {total} exceeds the model's "
                f"{PCPU_UNIT_LIMIT} bytes")
        pc = PercpuConfig(**v)
        dyn = pc.first_chunk_dyn_size(page_size)
        if v["first_chunk_free"] % PCPU_MIN_ALLOC_SIZE or v["first_chunk_free"] > dyn:
            bad("first_chunk_free", f"must be a multiple of {PCPU_MIN_ALLOC_SIZE} and at most the "
                f"first chunk's dynamic area ({dyn} bytes), got {v['first_chunk_free']}")
            pc = PercpuConfig(**v)
        return pc

    def cgroups(self, top, page_size, root_ctl):
        if "cgroups" not in top:
            return ()
        enabled = {"/": root_ctl}   # cgroup path -> its subtree_control
        tags, out = {}, []
        for i, item in enumerate(self.sequence(top["cgroups"][1], "cgroups")):
            path = f"cgroups[{i}]"
            keys = ("path", "subtree_control", "allocations") + tuple(CONFIG_FILES)
            m = self.mapping(item, path, keys)
            if "path" not in m:
                if isinstance(item, yaml.MappingNode):
                    self.err(item, path, "missing key 'path'")
                continue
            cg = self.field(m, "path", self.string, path, None)
            if cg is None or not self.check_path(cg, m["path"][1], path + ".path", enabled):
                continue
            parent = cg.rsplit("/", 1)[0] or "/"
            ctl = self.field(m, "subtree_control", self.controllers, path, ())
            for c in ctl:
                if c not in enabled[parent]:
                    self.err(m["subtree_control"][1], path + ".subtree_control",
                             f"{c!r} is not in this cgroup's cgroup.controllers: {parent} does "
                             "not enable it (ENOENT)")
            enabled[cg] = ctl
            files = []
            for name, (knode, vnode) in m.items():
                if name not in CONFIG_FILES:
                    continue
                self.check_profile_file(knode, path, name)
                if name.startswith("memory.") and "memory" not in enabled[parent]:
                    self.err(knode, f"{path}.{name}", f"no such file: {parent} does not enable "
                             "memory in its subtree_control")
                text = self.raw(vnode, f"{path}.{name}")
                if text is BAD:
                    continue
                try:
                    CONFIG_FILES[name].write.parse(text.encode(), page_size)
                except ModelError as e:
                    self.err(vnode, f"{path}.{name}", f"{text!r} is refused by the kernel ({e})")
                    continue
                files.append((name, text))
            allocs = []
            if "allocations" in m:
                for j, a in enumerate(self.sequence(m["allocations"][1], path + ".allocations")):
                    alloc = self.allocation(a, f"{path}.allocations[{j}]", page_size, tags)
                    if alloc is not None:
                        allocs.append(alloc)
            out.append(CgroupConfig(cg, ctl, tuple(files), tuple(allocs)))
        return tuple(out)

    def check_path(self, cg, node, path, enabled):
        parts = cg[1:].split("/")
        why = None
        if not cg.startswith("/"):
            why = "must be absolute (start with /)"
        elif cg == "/":
            why = "the root cgroup exists already (set root_subtree_control for it)"
        elif any(p in ("", ".", "..") for p in parts):
            why = "empty, '.' or '..' path component"
        elif any("\n" in p or len(p.encode()) > 255 for p in parts):
            why = "a name with a newline or longer than 255 bytes (mkdir would fail)"
        elif cg in enabled:
            why = "declared twice"
        elif (cg.rsplit("/", 1)[0] or "/") not in enabled:
            why = f"parent {cg.rsplit('/', 1)[0]} is not declared before it"
        if why:
            self.err(node, path, f"{cg!r}: {why}")
        return why is None

    def allocation(self, node, path, page_size, tags):
        m = self.mapping(node, path, ("size", "count", "align", "tag", "account"))
        if "size" not in m:
            if isinstance(node, yaml.MappingNode):
                self.err(node, path, "missing key 'size'")
            return None
        size = self.size(m["size"][1], path + ".size", 1, ALLOC_MAX_SIZE)
        count = self.field(m, "count", self.integer, path, 1, 1, ALLOC_MAX_COUNT)
        align = self.field(m, "align", self.size, path, 8)
        if not pow2(align) or align > page_size:
            self.err(m["align"][1], path + ".align",
                     f"must be a power of two <= the page size {page_size}, got {align}")
        tag = self.field(m, "tag", self.string, path, None)
        if tag is not None:
            if not tag or any(c.isspace() or c == "=" for c in tag):
                self.err(m["tag"][1], path + ".tag", f"{tag!r}: must be non-empty, without "
                         "whitespace or '='")
            elif tag in tags:
                self.err(m["tag"][1], path + ".tag", f"tag {tag!r} already used by {tags[tag]}")
            tags.setdefault(tag, path)
        account = self.field(m, "account", self.boolean, path, True)
        if size is BAD:
            return None
        return AllocConfig(size, count, align, tag, account)
