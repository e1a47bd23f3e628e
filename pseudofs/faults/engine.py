"""The live plan: which rules a call matches, whether their triggers fire, hit counts, and the
fault log (the last LOG_SIZE injections). No I/O but /proc/TID/comm; the mount's hooks
(pseudofs/fs/faultops.py) act on what `match` returns."""

import collections
import errno as _errno
import logging
import random
import threading
from typing import Callable, List, Optional

from pseudofs.errors import ModelError
from pseudofs.files.table import PERCPU_TEST
from pseudofs.faults import mutate
from pseudofs.faults.plan import OPS, Plan, PlanError, Rule, glob_regex, parse_plan_text, show

log = logging.getLogger("pseudofs")

LOG_SIZE = 1000
CONTROL = PERCPU_TEST + "/"
# the plan's own files are never faulted: a harness can always read and clear the plan
EXEMPT = (CONTROL + "faults", CONTROL + "fault_log")


def read_comm(pid: int) -> str:
    """The task's comm as the kernel keeps it (at most 15 characters), '' if it is gone."""
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return ""


def describe(rule: Rule) -> str:
    v = rule.value
    if rule.action == "errno":
        return "errno=%s" % str(rule.source.get("errno", _errno.errorcode.get(v, v))).upper()
    if rule.action == "torn":
        return "torn=%s %s" % (v[0], v[1].decode().strip())
    if rule.action == "mutate":
        return "mutate=" + ",".join(name for name, _ in v)
    return "%s=%s" % (rule.action, v)


class FaultEngine:
    """One per mounted tree. `listeners` are told when a plan comes or goes, so the adapter
    can skip every fault check while there is none."""

    def __init__(self, comm_of: Callable[[int], str] = read_comm):
        self.plan: Optional[Plan] = None
        self.comm_of = comm_of
        self.listeners: List[Callable[[bool], None]] = []
        self.ring: collections.deque = collections.deque(maxlen=LOG_SIZE)
        self.seq = 0
        self._mutex = threading.Lock()     # the multi-threaded loop may call in parallel
        self._install(None)

    # --- the plan ----------------------------------------------------------------------------
    def _install(self, plan: Optional[Plan]) -> None:
        self.plan = plan if plan is not None and plan.rules else None
        rules = plan.rules if plan is not None else ()
        self.regex = {r.index: glob_regex(r.path) for r in rules}
        self.by_op = {op: [r for r in rules if r.op == op] for op in OPS}
        self._candidates: dict = {}                  # (op, path) -> rules whose glob matches
        self.calls = {r.index: 0 for r in rules}     # matching calls seen per rule
        self.hits = {r.index: 0 for r in rules}      # injections per rule
        self.rng = random.Random(plan.seed if plan is not None else 0)
        for fn in self.listeners:
            fn(self.plan is not None)

    def load(self, plan: Optional[Plan]) -> None:
        with self._mutex:
            self._install(plan)

    def write(self, data: bytes) -> None:
        """A write to the faults file: a plan (replaces the live one, draws and counts
        restart) or `clear`. A bad plan: EINVAL, the live plan unchanged."""
        text = data.decode("utf-8", "replace")
        if text.strip() == "clear":
            self.load(None)
            return
        try:
            plan = parse_plan_text(text)
        except PlanError as e:
            log.warning("faults: plan refused, the live plan is unchanged: %s", e)
            raise ModelError(_errno.EINVAL, str(e)) from None
        for w in plan.warnings:
            log.warning("faults: %s", w)
        self.load(plan)

    def show(self) -> bytes:
        p = self.plan
        if p is None:
            return b""
        return show(p, [self.hits[r.index] for r in p.rules]).encode()

    def note(self, text: str) -> None:
        log.info("faults: %s", text)

    def log_text(self) -> bytes:
        return "".join("%d %s %s %d %s %s\n" % e for e in self.ring).encode()

    # --- matching ----------------------------------------------------------------------------
    def _fires(self, rule: Rule) -> bool:
        n = self.calls[rule.index] = self.calls[rule.index] + 1
        if rule.trigger is None:
            return True
        kind, v = rule.trigger
        if kind == "nth":
            return n == v
        if kind == "first":
            return n <= v
        if kind == "after":
            return n > v
        if kind == "every":
            return n % v == 0
        return self.rng.random() < v          # probability: one draw per matching call

    def match(self, op: str, path: str, pid, actions=None) -> List[Rule]:
        """The rules that fire for this call, in plan order (each logged and counted).
        `pid`: the caller's thread id, or a function giving it (asked only if a glob matches).
        `actions`: only rules with one of these actions are considered (e.g. the edits when a
        read takes a new snapshot)."""
        rel = path.lstrip("/") if path else ""
        fired, comm = [], None
        # under the lock from the lookup on: a plan replaced meanwhile (the multi-threaded
        # loop) must not mix its rules and counters with the old plan's
        with self._mutex:
            rules = self._candidates.get((op, path))
            if rules is None:
                rules = self._globbed(op, path)
            if rules and callable(pid):
                pid = pid()
            for r in rules:
                if actions is not None and r.action not in actions:
                    continue
                if r.comm is not None:
                    if comm is None:
                        comm = self.comm_of(pid)[:15]
                    if comm != r.comm:
                        continue
                if self._fires(r):
                    self.hits[r.index] += 1
                    if comm is None:
                        comm = self.comm_of(pid)[:15]
                    self.seq += 1
                    self.ring.append((self.seq, op, "/" + rel, pid, comm or "-",
                                      "rule=%d %s" % (r.index, describe(r))))
                    fired.append(r)
                    if r.action == "errno":       # an errno ends the call
                        break
        return fired

    def _globbed(self, op: str, path) -> tuple:
        """The rules of `op` whose glob matches `path`, remembered per path: a plan that
        matches nothing costs a dict lookup per call."""
        rel = path.lstrip("/") if path else ""
        rules = () if self.plan is None or rel in EXEMPT else tuple(
            r for r in self.by_op[op] if self.regex[r.index].match(rel))
        if len(self._candidates) > 8192:
            self._candidates.clear()
        self._candidates[(op, path)] = rules
        return rules

    def mutate(self, path: str, data: bytes, pid=0) -> bytes:
        """The content edits of the rules that fire for a new snapshot of `path`."""
        for r in self.match("read", path, pid, ("mutate",)):
            data = mutate.apply(data, r.value)
        return data
