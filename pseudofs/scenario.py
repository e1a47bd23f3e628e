"""Scenario files for `pseudofs play` (docs/scenarios.md): the YAML grammar, checked like the
configuration (every problem at once, each as "FILE, line N: key.path: what"), read into frozen
dataclasses. What a scenario does to a mount is in pseudofs/play.py.

    duration: 120                 # scenario seconds (--duration overrides)
    seed: 1                       # --seed overrides
    parent: /play                 # containers are created below it (made, +memory, if missing)
    containers:                   # classes of containers, started at random
      - name: web                 # cgroups web-1, web-2 ... below parent
        arrival: 0.5              # mean containers started per second (Poisson)
        max_alive: 20
        lifetime: {min: 20, max: 90}      # seconds (a distribution, below)
        limits: {memory.max: 64M}         # cgroup files written at creation
        leak: 0.1                 # share removed without freeing (objects reparent to parent)
        allocations:
          rate: 2                 # mean allocations per second per container
          size: [8, 16, 64, 256]  # bytes
          count: {min: 10, max: 200}
          align: 8
          frees: 1                # mean frees per second (the oldest allocation group)
    events:                       # `at` once, or `every` (from `start`, default every)
      - {at: 30, cpu: offline, for: 20}     # one online CPU (never cpu0 or the last) goes
      - {at: 60, cpu: online}               # one offline present CPU comes back
      - {at: 40, set: {container: web, memory.max: 8M}}   # alive ones, and those to come
      - {at: 50, burst: {container: web, size: 1K, count: 500, tries: 100}}   # until ENOMEM

A distribution is a number (or size: 1K), a list (one of them, uniformly), {min: A, max: B}
(uniform integers, or reals for seconds) or {exp: MEAN} (exponential).
"""

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import yaml

from .files.cgroup import CONFIG_FILES
from .config_yaml import BAD, YamlReader, join, pow2, read_text
from .errors import ConfigError, ModelError

LIMIT_FILES = ("memory.max", "memory.high", "memory.low", "memory.min")
MAX_SIZE = 32768              # the largest percpu allocation (README: percpu_test alloc)
MAX_COUNT = 100000


@dataclass(frozen=True)
class Dist:
    kind: str                 # const | choice | uniform | exp
    args: Tuple = ()
    integer: bool = True

    def draw(self, rng):
        if self.kind == "const":
            return self.args[0]
        if self.kind == "choice":
            return rng.choice(self.args)
        if self.kind == "uniform":
            lo, hi = self.args
            return rng.randint(lo, hi) if self.integer else rng.uniform(lo, hi)
        v = rng.expovariate(1.0 / self.args[0])
        return max(1, int(round(v))) if self.integer else v


@dataclass(frozen=True)
class Allocations:
    rate: float = 1.0
    size: Dist = Dist("const", (64,))
    count: Dist = Dist("const", (1,))
    align: int = 8
    frees: float = 0.0


@dataclass(frozen=True)
class ContainerClass:
    name: str
    arrival: float = 0.1
    max_alive: int = 10
    lifetime: Dist = Dist("const", (60.0,), integer=False)
    limits: Tuple[Tuple[str, str], ...] = ()
    leak: float = 0.0
    allocations: Allocations = Allocations()


@dataclass(frozen=True)
class Event:
    at: Optional[float]       # once at this second, or
    every: Optional[float]    # every so many seconds from `start`
    start: float
    action: str               # cpu_offline | cpu_online | set | burst
    container: Optional[str] = None
    for_s: Optional[float] = None                   # cpu_offline: back online after
    files: Tuple[Tuple[str, str], ...] = ()         # set
    size: Optional[Dist] = None                     # burst
    count: Optional[Dist] = None
    tries: int = 100


@dataclass(frozen=True)
class Scenario:
    source: str
    duration: int = 60
    seed: int = 0
    parent: str = "/play"
    containers: Tuple[ContainerClass, ...] = ()
    events: Tuple[Event, ...] = ()

    def due(self, second: int):
        """The events that happen in scenario second `second`, in file order."""
        for ev in self.events:
            if ev.at is not None:
                if math.floor(ev.at) == second:
                    yield ev
            elif second >= ev.start and (second - ev.start) % ev.every < 1:
                yield ev


class _Reader(YamlReader):

    def number(self, node, path, lo, hi):
        v = self.const(node, path)
        if v is BAD:
            return BAD
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.err(node, path, f"expected a number, got {v!r}")
            return BAD
        if not lo <= v <= hi:
            self.err(node, path, f"must be {lo}..{hi}, got {v}")
            return BAD
        return v

    def dist(self, node, path, kind="count", lo=1, hi=MAX_COUNT):
        """kind: count (integers), size (memparse sizes) or seconds (reals)."""
        one = {"count": lambda n, p: self.integer(n, p, lo, hi),
               "size": lambda n, p: self.size(n, p, lo, hi),
               "seconds": lambda n, p: self.number(n, p, lo, hi)}[kind]
        integer = kind != "seconds"
        if isinstance(node, yaml.SequenceNode):
            vals = [one(n, f"{path}[{i}]") for i, n in enumerate(node.value)]
            if not vals:
                self.err(node, path, "an empty list")
            return BAD if BAD in vals or not vals else Dist("choice", tuple(vals), integer)
        if isinstance(node, yaml.MappingNode):
            m = self.mapping(node, path, ("min", "max", "exp"))
            if "exp" in m:
                if "min" in m or "max" in m:
                    self.err(node, path, "give either exp or min and max")
                    return BAD
                mean = self.number(m["exp"][1], join(path, "exp"), lo, hi)
                return BAD if mean is BAD else Dist("exp", (mean,), integer)
            if "min" not in m or "max" not in m:
                self.err(node, path, "needs min and max (or exp)")
                return BAD
            a, b = one(m["min"][1], join(path, "min")), one(m["max"][1], join(path, "max"))
            if BAD in (a, b):
                return BAD
            if a > b:
                self.err(node, path, f"min {a} is above max {b}")
                return BAD
            return Dist("uniform", (a, b), integer)
        v = one(node, path)
        return BAD if v is BAD else Dist("const", (v,), integer)

    def limits(self, m, path, keys):
        """The cgroup files of a mapping (name -> raw text)."""
        out = []
        for key in keys:
            if key in m:
                raw = self.raw(m[key][1], join(path, key))
                if raw is BAD:
                    continue
                try:                    # the parse a write to that file goes through
                    CONFIG_FILES[key].write.parse(raw.encode(), 4096)
                except ModelError as e:
                    self.err(m[key][1], join(path, key), f"{raw!r} is refused by the kernel "
                             f"({e})")
                    continue
                out.append((key, raw))
        return tuple(out)

    def run(self, text) -> Scenario:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark else ""
            raise ConfigError([f"{self.source}{line}: YAML syntax error: "
                               f"{getattr(e, 'problem', e)}"]) from None
        top = self.mapping(root, "", ("duration", "seed", "parent", "containers", "events"))
        d = Scenario(self.source)
        duration = self.field(top, "duration", self.integer, "", d.duration, 1, 10 ** 7)
        seed = self.field(top, "seed", self.integer, "", d.seed, 0, 2 ** 63)
        parent = self.field(top, "parent", self.string, "", d.parent)
        if not parent.startswith("/") or parent == "/" or "//" in parent or \
                parent.endswith("/"):
            self.err(top["parent"][1], "parent",
                     f"a cgroup path below the root like /play, got {parent!r}")
        classes = []
        if "containers" in top:
            for i, node in enumerate(self.sequence(top["containers"][1], "containers")):
                c = self.container(node, f"containers[{i}]")
                if c is not None:
                    if any(o.name == c.name for o in classes):
                        self.err(node, f"containers[{i}].name", f"{c.name!r} given twice")
                    classes.append(c)
        names = {c.name for c in classes}
        events = []
        if "events" in top:
            for i, node in enumerate(self.sequence(top["events"][1], "events")):
                ev = self.event(node, f"events[{i}]", names)
                if ev is not None:
                    events.append(ev)
        if self.problems:
            raise ConfigError([m for *_, m in sorted(self.problems)])
        return Scenario(self.source, duration, seed, parent, tuple(classes), tuple(events))

    def container(self, node, path):
        keys = ("name", "arrival", "max_alive", "lifetime", "limits", "leak", "allocations")
        m = self.mapping(node, path, keys)
        if "name" not in m:
            self.err(node, path, "needs a name")
            return None
        name = self.string(m["name"][1], join(path, "name"))
        if name is BAD or not name or "/" in name or "\n" in name:
            if name is not BAD:
                self.err(m["name"][1], join(path, "name"), f"not a cgroup name: {name!r}")
            return None
        d = ContainerClass(name)
        lim = self.mapping(m["limits"][1], join(path, "limits"), LIMIT_FILES) \
            if "limits" in m else {}
        return ContainerClass(
            name,
            self.field(m, "arrival", self.number, path, d.arrival, 0, 1000),
            self.field(m, "max_alive", self.integer, path, d.max_alive, 1, 10000),
            self.field(m, "lifetime", self.dist, path, d.lifetime, "seconds", 1, 10 ** 7),
            self.limits(lim, join(path, "limits"), LIMIT_FILES),
            self.field(m, "leak", self.number, path, d.leak, 0, 1),
            self.allocations(m["allocations"][1], join(path, "allocations"))
            if "allocations" in m else d.allocations)

    def allocations(self, node, path):
        m = self.mapping(node, path, ("rate", "size", "count", "align", "frees"))
        d = Allocations()
        align = self.field(m, "align", self.integer, path, d.align, 1, 4096)
        if not pow2(align):
            self.err(m["align"][1], join(path, "align"), f"must be a power of two, got {align}")
            align = d.align
        return Allocations(
            self.field(m, "rate", self.number, path, d.rate, 0, 10000),
            self.field(m, "size", self.dist, path, d.size, "size", 1, MAX_SIZE),
            self.field(m, "count", self.dist, path, d.count, "count", 1, MAX_COUNT),
            align,
            self.field(m, "frees", self.number, path, d.frees, 0, 10000))

    def event(self, node, path, names):
        m = self.mapping(node, path, ("at", "every", "start", "cpu", "for", "set", "burst"))
        at = self.field(m, "at", self.number, path, None, 0, 10 ** 7)
        every = self.field(m, "every", self.number, path, None, 1, 10 ** 7)
        if (at is None) == (every is None):
            self.err(node, path, "needs exactly one of at and every")
            return None
        start = self.field(m, "start", self.number, path, every or 0, 0, 10 ** 7)
        if "start" in m and every is None:
            self.err(m["start"][1], join(path, "start"), "only with every")
        actions = [k for k in ("cpu", "set", "burst") if k in m]
        if len(actions) != 1:
            self.err(node, path, "needs exactly one of cpu, set and burst")
            return None
        act = actions[0]
        if "for" in m and not (act == "cpu"):
            self.err(m["for"][1], join(path, "for"), "only with cpu: offline")
        if act == "cpu":
            what = self.string(m["cpu"][1], join(path, "cpu"))
            if what not in ("offline", "online"):
                if what is not BAD:
                    self.err(m["cpu"][1], join(path, "cpu"),
                             f"must be offline or online, got {what!r}")
                return None
            for_s = self.field(m, "for", self.number, path, None, 1, 10 ** 7)
            if for_s is not None and what == "online":
                self.err(m["for"][1], join(path, "for"), "only with cpu: offline")
            return Event(at, every, start, "cpu_" + what, for_s=for_s)
        sub = join(path, act)
        keys = ("container",) + (LIMIT_FILES if act == "set" else ("size", "count", "tries"))
        s = self.mapping(m[act][1], sub, keys)
        container = self.field(s, "container", self.string, sub, None)
        if container is None or container not in names:
            where = s["container"][1] if "container" in s else m[act][1]
            self.err(where, join(sub, "container"), "must name one of the containers "
                     f"({', '.join(sorted(names)) or 'none defined'}), got {container!r}")
            return None
        if act == "set":
            files = self.limits(s, sub, LIMIT_FILES)
            if not files:
                self.err(m[act][1], sub, f"sets nothing (one of {', '.join(LIMIT_FILES)})")
            return Event(at, every, start, "set", container, files=files)
        size = self.field(s, "size", self.dist, sub, Dist("const", (1024,)), "size", 1, MAX_SIZE)
        count = self.field(s, "count", self.dist, sub, Dist("const", (100,)), "count", 1,
                           MAX_COUNT)
        tries = self.field(s, "tries", self.integer, sub, 100, 1, 100000)
        return Event(at, every, start, "burst", container, size=size, count=count, tries=tries)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    return _Reader(source).run(text)


def load_scenario(path: str) -> Scenario:
    return parse_scenario(read_text(path), str(path))
