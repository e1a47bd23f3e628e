"""The fault classes of the robustness harness: each is a plan built for a reader's files, its
comm and (where the class edits one value) the key it parses. docs/faults.md gives the public
bug each class mirrors."""

from dataclasses import dataclass
from typing import Callable, List, Optional

import yaml

from pseudofs.model.limits import ULLONG_MAX, page_counter_max

U64_MAX = str(ULLONG_MAX)
PAGE_ROUNDED_UNLIMITED = str(page_counter_max(4096) * 4096)   # PAGE_COUNTER_MAX pages, in bytes


@dataclass(frozen=True)
class Target:
    files: tuple                     # globs relative to the mount root
    comm: Optional[str]              # the reader's comm (None: every process)
    key: Optional[str] = None        # a key the reader parses; None: the files are one value
    vendor_line: str = "vendor_token 1"       # a line no kernel of the reader's age printed
    torn_cgroup: str = "/pseudofs-torn"       # where a torn read's allocations go


@dataclass(frozen=True)
class FaultClass:
    name: str
    what: str
    rules: Callable[[Target], Optional[List[dict]]]    # None: not applicable to the target
    torn: bool = False


def _each(t: Target, **action) -> List[dict]:
    rules = []
    for f in t.files:
        r = {"path": f}
        if t.comm:
            r["comm"] = t.comm
        r.update(action)
        rules.append(r)
    return rules


def _value(literal):
    def rules(t: Target):
        if t.key is None:
            return _each(t, mutate=[{"replace": literal}])
        return _each(t, mutate=[{"set": {t.key: literal}}])
    return rules


def _keyed(edit):
    return lambda t: None if t.key is None else _each(t, mutate=[edit(t)])


def _torn(t: Target):
    return [*_each(t, short_read=256),
            *_each(t, torn="alloc size=4096 count=200 cgroup=%s" % t.torn_cgroup)]


CLASSES = (
    FaultClass("vanished", "open -> ENOENT (listed, then gone)",
               lambda t: _each(t, op="open", errno="ENOENT")),
    FaultClass("removed mid-read", "read -> ENODEV (the cgroup went while open)",
               lambda t: _each(t, errno="ENODEV")),
    FaultClass("read refused", "read -> EOPNOTSUPP (PSI off, threaded cgroup)",
               lambda t: _each(t, errno="EOPNOTSUPP")),
    FaultClass("short first read", "the first read of each file returns 64 bytes",
               lambda t: _each(t, first=1, short_read=64)),
    FaultClass("blank line", "an empty line after the key (or first)",
               lambda t: _each(t, mutate=[{"blank_line": "after " + t.key if t.key
                                           else "leading"}])),
    FaultClass("unknown line", "a line of a key the reader does not know",
               _keyed(lambda t: {"add_line": {"text": t.vendor_line, "after": t.key}})),
    FaultClass("key missing", "the key's line is gone (older kernel)",
               _keyed(lambda t: {"drop_key": t.key})),
    FaultClass("squeezed field", "no blank between the key and its value",
               _keyed(lambda t: {"squeeze": t.key})),
    FaultClass("literal max", "the value is `max`", _value("max")),
    FaultClass("2^64-1", "the value is " + U64_MAX, _value(U64_MAX)),
    FaultClass("negative", "the value is -4096", _value("-4096")),
    FaultClass("page-rounded max", "the value is " + PAGE_ROUNDED_UNLIMITED,
               _value(PAGE_ROUNDED_UNLIMITED)),
    FaultClass("no final newline", "the last newline is missing",
               lambda t: _each(t, mutate=["no_final_newline"])),
    FaultClass("empty file", "the file reads as 0 bytes", lambda t: _each(t, mutate=["empty"])),
    FaultClass("whitespace only", "the file is one newline",
               lambda t: _each(t, mutate=["whitespace_only"])),
    # last: its allocations are freed after the run, but the percpu chunks they populated
    # stay (as in the kernel), so the model differs from then on
    FaultClass("torn read", "256-byte reads, the model changes between them", _torn,
               torn=True),
)


def plan_text(cls: FaultClass, t: Target, seed: int = 0) -> Optional[str]:
    rules = cls.rules(t)
    if rules is None:
        return None
    return yaml.safe_dump({"seed": seed, "rules": rules}, sort_keys=False)
