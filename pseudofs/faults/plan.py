"""A fault plan: parse and check (pure). A plan is a mapping `seed` + `rules`; every rule has a
path glob, an op, at most one trigger, an optional comm and exactly one action (docs/faults.md).
A bad plan raises PlanError naming the rule and the key; nothing of it is kept."""

import errno as errnos
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import yaml

OPS = ("getattr", "open", "read", "write", "readdir")
TRIGGERS = ("nth", "first", "after", "every", "probability")
ACTIONS = ("errno", "short_read", "delay_ms", "torn", "mutate")
# actions that act on the bytes a read returns: only for op read
READ_ONLY_ACTIONS = ("short_read", "torn", "mutate")
MUTATIONS = ("add_line", "drop_key", "set", "replace", "blank_line", "no_final_newline",
             "squeeze", "empty", "whitespace_only")
# TASK_COMM_LEN is 16 (include/linux/sched.h): 15 characters and the NUL
COMM_LEN = 15
MAX_DELAY_MS = 60_000
TORN_FILES = ("alloc", "free")          # the control files a torn command may write


class PlanError(ValueError):
    """A plan refused whole: the message names the rule (1-based) and the key."""


@dataclass(frozen=True)
class Rule:
    index: int                      # 1-based position in the plan
    path: str                       # glob relative to the mount root, no leading /
    op: str = "read"
    trigger: Optional[Tuple[str, object]] = None     # (name, value) or None: every call
    comm: Optional[str] = None      # already cut to COMM_LEN
    action: str = "errno"
    value: object = None            # errno number, N, ms, (file, line) or mutations
    source: dict = field(default_factory=dict, compare=False)   # as written (for show)


@dataclass(frozen=True)
class Plan:
    seed: int = 0
    rules: Tuple[Rule, ...] = ()
    warnings: Tuple[str, ...] = ()


def _int(v, where, lo=0, hi=None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise PlanError("%s: an integer is expected, not %r" % (where, v))
    if v < lo or (hi is not None and v > hi):
        raise PlanError("%s: %d is out of range (%s..%s)" % (where, v, lo, hi if hi else ""))
    return v


def _errno_value(v, where) -> int:
    name = v.upper() if isinstance(v, str) else ""
    if name.startswith("E") and isinstance(getattr(errnos, name, None), int):
        return getattr(errnos, name)          # aliases too: EOPNOTSUPP is ENOTSUP
    raise PlanError("%s: %r is not an errno name (ENOENT, ENODEV, EIO, EOPNOTSUPP ...)"
                    % (where, v))


def _text(v, where) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        raise PlanError("%s: a text is expected, not %r" % (where, v))
    return str(v)


def _key(v, where) -> str:
    k = _text(v, where)
    if not k.strip() or k != k.strip():
        raise PlanError("%s: %r is not a key (the first field of a line)" % (where, k))
    return k


def _mutations(v, where) -> Tuple[Tuple[str, object], ...]:
    """A list of one-key mappings (or one mapping, its keys in order)."""
    if isinstance(v, dict):
        items = list(v.items())
    elif isinstance(v, list) and v:
        items = []
        for i, m in enumerate(v, 1):
            if isinstance(m, str) and m in ("no_final_newline", "empty", "whitespace_only"):
                items.append((m, True))
            elif isinstance(m, dict) and len(m) == 1:
                items.append(next(iter(m.items())))
            else:
                raise PlanError("%s[%d]: one edit per item (e.g. `- drop_key: Foo`), not %r"
                                % (where, i, m))
    else:
        raise PlanError("%s: a list of edits is expected" % where)
    out = []
    for name, arg in items:
        w = "%s: %s" % (where, name)
        if name not in MUTATIONS:
            raise PlanError("%s: unknown edit (known: %s)" % (w, ", ".join(MUTATIONS)))
        if name == "add_line":
            if isinstance(arg, dict):
                extra = set(arg) - {"text", "after", "at"}
                if extra or "text" not in arg or ("after" in arg) == ("at" in arg):
                    raise PlanError("%s: takes text and one of after: KEY, at: start|end" % w)
                if "at" in arg and arg["at"] not in ("start", "end"):
                    raise PlanError("%s: at: start or end, not %r" % (w, arg["at"]))
                arg = {k: _text(x, "%s: %s" % (w, k)) for k, x in arg.items()}
                if "after" in arg:
                    _key(arg["after"], w + ": after")
            else:
                arg = {"text": _text(arg, w), "at": "end"}
        elif name in ("drop_key", "squeeze"):
            arg = _key(arg, w)
        elif name == "replace":
            arg = _text(arg, w)
        elif name == "set":
            if not isinstance(arg, dict) or not arg:
                raise PlanError("%s: a mapping KEY: TEXT is expected" % w)
            arg = tuple((_key(k, w), _text(x, "%s: %s" % (w, k))) for k, x in arg.items())
        elif name == "blank_line":
            a = _text(arg, w)
            if a not in ("leading", "trailing") and not (a.startswith("after ") and a[6:].strip()):
                raise PlanError("%s: leading, trailing or `after KEY`, not %r" % (w, a))
            arg = a
        elif arg not in (True, None):
            raise PlanError("%s: takes no value (write `- %s` or `%s: true`)" % (w, name, name))
        out.append((name, arg))
    return tuple(out)


def _torn(v, where) -> Tuple[str, bytes]:
    text = _text(v, where).strip()
    target, _, line = text.partition(" ")
    if target not in TORN_FILES or not line.strip():
        raise PlanError("%s: `alloc KEY=VALUE ...` or `free KEY=VALUE ...` is expected, not %r"
                        % (where, text))
    return target, (line.strip() + "\n").encode()


def _glob(v, where) -> str:
    path = _text(v, where).strip().lstrip("/")
    if not path:
        raise PlanError("%s: an empty glob" % where)
    try:
        glob_regex(path)
    except re.error as e:
        raise PlanError("%s: %s" % (where, e)) from None
    return path


def glob_regex(glob: str) -> "re.Pattern":
    """`**` crosses directories (`a/**/b` matches a/b too), `*` and `?` do not, `[..]` is a
    class, `{x,y}` alternatives."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2)
            if j < 0:
                raise re.error("unclosed [")
            body = glob[i + 1:j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
            continue
        elif c == "{":
            j = glob.find("}", i)
            if j < 0:
                raise re.error("unclosed {")
            out.append("(?:" + "|".join(re.escape(a) for a in glob[i + 1:j].split(",")) + ")")
            i = j + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _rule(i: int, r, warnings: List[str]) -> Rule:
    where = "rule %d" % i
    if not isinstance(r, dict):
        raise PlanError("%s: a mapping is expected" % where)
    known = {"path", "op", "comm", "hits"} | set(TRIGGERS) | set(ACTIONS)
    for k in r:
        if k not in known:
            raise PlanError("%s: %s: unknown key (known: %s)"
                            % (where, k, ", ".join(sorted(known))))
    if "path" not in r:
        raise PlanError("%s: path: missing (a glob relative to the mount root)" % where)
    path = _glob(r["path"], where + ": path")
    op = r.get("op", "read")
    if op not in OPS:
        raise PlanError("%s: op: %r is not one of %s" % (where, op, ", ".join(OPS)))
    trig = [k for k in TRIGGERS if k in r]
    if len(trig) > 1:
        raise PlanError("%s: %s: at most one trigger" % (where, ", ".join(trig)))
    trigger = None
    if trig:
        k = trig[0]
        w = "%s: %s" % (where, k)
        if k == "probability":
            p = r[k]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise PlanError("%s: a number from 0 to 1 is expected, not %r" % (w, p))
            trigger = (k, float(p))
        else:
            trigger = (k, _int(r[k], w, 0 if k == "after" else 1))
    acts = [k for k in ACTIONS if k in r]
    if len(acts) != 1:
        raise PlanError("%s: %s: exactly one action is needed (%s)" % (
            where, ", ".join(acts) or "no action", ", ".join(ACTIONS)))
    action = acts[0]
    w = "%s: %s" % (where, action)
    if action in READ_ONLY_ACTIONS and op != "read":
        raise PlanError("%s: acts on what a read returns: only with op: read, not %s" % (w, op))
    v = r[action]
    value = (_errno_value(v, w) if action == "errno" else
             _int(v, w, 1) if action == "short_read" else
             _int(v, w, 0, MAX_DELAY_MS) if action == "delay_ms" else
             _torn(v, w) if action == "torn" else _mutations(v, w))
    comm = None
    if "comm" in r:
        comm = _text(r["comm"], where + ": comm")
        if len(comm) > COMM_LEN:
            warnings.append("%s: comm: %r is longer than the kernel's %d characters: compared "
                            "as %r" % (where, comm, COMM_LEN, comm[:COMM_LEN]))
            comm = comm[:COMM_LEN]
    source = {k: x for k, x in r.items() if k != "hits"}
    return Rule(i, path, op, trigger, comm, action, value, source)


def parse_plan(data) -> Plan:
    """A plan from its YAML data (already loaded); PlanError if anything is wrong."""
    if data is None:
        return Plan()
    if not isinstance(data, dict):
        raise PlanError("plan: a mapping with seed and rules is expected")
    for k in data:
        if k not in ("seed", "rules"):
            raise PlanError("plan: %s: unknown key (seed, rules)" % k)
    seed = _int(data.get("seed", 0), "plan: seed", 0)
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise PlanError("plan: rules: a list is expected")
    warnings: List[str] = []
    parsed = tuple(_rule(i, r, warnings) for i, r in enumerate(rules, 1))
    return Plan(seed, parsed, tuple(warnings))


def parse_plan_text(text: str) -> Plan:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PlanError("plan: YAML error: %s" % " ".join(str(e).split())) from None
    return parse_plan(data)


def show(plan: Plan, hits) -> str:
    """The plan as YAML, each rule with its `hits: N`; it can be written back as it is."""
    rules = []
    for r, n in zip(plan.rules, hits):
        d = dict(r.source)
        d["hits"] = n
        rules.append(d)
    return yaml.safe_dump({"seed": plan.seed, "rules": rules}, sort_keys=False,
                          default_flow_style=False, width=1000)
