"""Fault plans without a mount: the parser refuses bad plans naming rule and key, the content
edits byte for byte, the engine's triggers and determinism, and render --faults."""

import os
import subprocess
import sys

import pytest

from pseudofs.config import parse_config
from pseudofs.errors import ConfigError, ModelError
from pseudofs.faults import mutate
from pseudofs.faults.engine import FaultEngine
from pseudofs.faults.plan import PlanError, glob_regex, parse_plan

MEMINFO = b"MemTotal:       16384 kB\nMemFree:         8192 kB\nShadowCallStack:       0 kB\n"
STAT = b"anon 4096\nanon_thp 0\nfile 8192\n"


@pytest.mark.parametrize("plan, where", [
    ({"rules": [{"errno": "EIO"}]}, "rule 1: path: missing"),
    ({"rules": [{"path": "x", "errno": "EBOGUS"}]}, "rule 1: errno: 'EBOGUS'"),
    ({"rules": [{"path": "x", "op": "stat", "errno": "EIO"}]}, "rule 1: op:"),
    ({"rules": [{"path": "x", "nth": 1, "every": 2, "errno": "EIO"}]},
     "rule 1: nth, every: at most one trigger"),
    ({"rules": [{"path": "x", "errno": "EIO", "delay_ms": 1}]}, "rule 1: errno, delay_ms"),
    ({"rules": [{"path": "x"}]}, "rule 1: no action"),
    ({"rules": [{"path": "x", "errno": "EIO"}, {"path": "y", "op": "open", "short_read": 3}]},
     "rule 2: short_read: acts on what a read returns"),
    ({"rules": [{"path": "x", "probability": 1.5, "errno": "EIO"}]}, "rule 1: probability"),
    ({"rules": [{"path": "x", "nth": 0, "errno": "EIO"}]}, "rule 1: nth: 0 is out of range"),
    ({"rules": [{"path": "x", "torn": "rmdir /a"}]}, "rule 1: torn:"),
    ({"rules": [{"path": "x", "mutate": [{"shuffle": 1}]}]}, "rule 1: mutate: shuffle"),
    ({"rules": [{"path": "x", "mutate": [{"blank_line": "middle"}]}]},
     "rule 1: mutate: blank_line"),
    ({"rules": [{"path": "x", "colour": 1, "errno": "EIO"}]}, "rule 1: colour: unknown key"),
    ({"seed": -1, "rules": []}, "plan: seed"),
    ({"rules": {"path": "x"}}, "plan: rules"),
])
def test_a_bad_plan_names_rule_and_key(plan, where):
    with pytest.raises(PlanError) as e:
        parse_plan(plan)
    assert where in str(e.value)


def test_a_long_comm_warns_and_is_cut_to_15():
    p = parse_plan({"rules": [{"path": "x", "comm": "prometheus-node-exporter", "errno": "EIO"}]})
    assert p.rules[0].comm == "prometheus-node"
    assert "longer than the kernel's 15" in p.warnings[0]


def test_glob():
    rx = glob_regex("sys/fs/cgroup/**/memory.stat")
    assert rx.match("sys/fs/cgroup/memory.stat") and rx.match("sys/fs/cgroup/a/b/memory.stat")
    assert not rx.match("sys/fs/cgroup/a/memory.stats")
    assert glob_regex("sys/*/x").match("sys/a/x") and not glob_regex("sys/*/x").match("sys/a/b/x")
    assert glob_regex("proc/pressure/{cpu,io}").match("proc/pressure/io")
    assert glob_regex("**").match("proc/meminfo")


@pytest.mark.parametrize("edits, want", [
    ([("set", (("MemTotal", "18446744073709551615"),))],
     b"MemTotal:       18446744073709551615 kB\nMemFree:         8192 kB\n"
     b"ShadowCallStack:       0 kB\n"),
    ([("set", (("ShadowCallStack", "10000000"),)), ("squeeze", "ShadowCallStack")],
     b"MemTotal:       16384 kB\nMemFree:         8192 kB\nShadowCallStack:10000000 kB\n"),
    ([("drop_key", "MemFree")], b"MemTotal:       16384 kB\nShadowCallStack:       0 kB\n"),
    ([("blank_line", "after MemTotal")],
     b"MemTotal:       16384 kB\n\nMemFree:         8192 kB\nShadowCallStack:       0 kB\n"),
    ([("blank_line", "leading")], b"\n" + MEMINFO),
    ([("blank_line", "trailing")], MEMINFO + b"\n"),
    ([("add_line", {"text": "Vendor: 1 kB", "after": "MemFree"})],
     b"MemTotal:       16384 kB\nMemFree:         8192 kB\nVendor: 1 kB\n"
     b"ShadowCallStack:       0 kB\n"),
    ([("add_line", {"text": "X: 1", "at": "start"})], b"X: 1\n" + MEMINFO),
    ([("no_final_newline", True)], MEMINFO[:-1]),
    ([("empty", True)], b""),
    ([("whitespace_only", True)], b"\n"),
    ([("replace", "max")], b"max\n"),
])
def test_edits_byte_for_byte(edits, want):
    assert mutate.apply(MEMINFO, edits) == want


def test_a_key_is_a_whole_key():
    assert mutate.set_value(STAT, "anon", "-4096") == b"anon -4096\nanon_thp 0\nfile 8192\n"
    assert mutate.drop_key(STAT, "anon") == b"anon_thp 0\nfile 8192\n"
    assert mutate.set_value(STAT, "nokey", "1") == STAT
    node = b"Node 0 MemTotal:       4096 kB\n"
    assert mutate.set_value(node, "MemTotal", "max") == b"Node 0 MemTotal:       max kB\n"


def _engine(plan):
    e = FaultEngine(comm_of=lambda pid: {1: "reader", 2: "other"}.get(pid, ""))
    e.load(parse_plan(plan))
    return e


@pytest.mark.parametrize("trigger, fired", [
    ({}, [1, 2, 3, 4, 5, 6]), ({"nth": 3}, [3]), ({"first": 2}, [1, 2]),
    ({"after": 4}, [5, 6]), ({"every": 2}, [2, 4, 6]),
])
def test_triggers(trigger, fired):
    e = _engine({"rules": [dict(path="proc/meminfo", errno="EIO", **trigger)]})
    got = [n for n in range(1, 7) if e.match("read", "/proc/meminfo", 1)]
    assert got == fired
    assert e.hits[1] == len(fired)


def test_probability_is_drawn_from_the_seed_and_restarts_with_the_plan():
    plan = {"seed": 7, "rules": [{"path": "**", "probability": 0.5, "errno": "EIO"}]}
    runs = []
    for _ in range(2):
        e = _engine(plan)
        runs.append([bool(e.match("read", "/proc/stat", 1)) for _ in range(40)])
    assert runs[0] == runs[1] and 5 < sum(runs[0]) < 35
    other = _engine(dict(plan, seed=8))
    assert [bool(other.match("read", "/proc/stat", 1)) for _ in range(40)] != runs[0]


def test_comm_and_an_errno_ends_the_call():
    e = _engine({"rules": [{"path": "**", "comm": "reader", "errno": "EIO"},
                           {"path": "**", "delay_ms": 0}]})
    assert [r.index for r in e.match("read", "/proc/stat", 1)] == [1]     # errno ends it
    assert [r.index for r in e.match("read", "/proc/stat", 2)] == [2]     # spared by comm
    assert e.log_text().decode().splitlines() == [
        "1 read /proc/stat 1 reader rule=1 errno=EIO",
        "2 read /proc/stat 2 other rule=2 delay_ms=0"]


def test_the_plan_files_are_never_faulted():
    e = _engine({"rules": [{"path": "**", "errno": "EIO"}]})
    assert not e.match("read", "/sys/kernel/debug/percpu_test/faults", 1)
    assert e.match("read", "/sys/kernel/debug/percpu_test/alloc", 1)


def test_a_refused_write_keeps_the_live_plan(caplog):
    e = _engine({"rules": [{"path": "proc/stat", "errno": "EIO"}]})
    before = e.show()
    with pytest.raises(ModelError) as err:
        e.write(b"rules: [{path: x, errno: NOPE}]")
    assert err.value.errno == 22 and "rule 1: errno" in caplog.text
    assert e.show() == before and e.match("read", "/proc/stat", 1)
    shown = e.show()
    assert b"hits: 1" in shown
    e.write(shown)                      # what reading shows can be written back: counts restart
    assert b"hits: 0" in e.show()
    e.write(b"clear\n")
    assert e.plan is None and e.show() == b""


def test_the_config_faults_section():
    with open(os.path.join(os.path.dirname(__file__), "..", "configs", "default.yaml")) as f:
        text = f.read()
    cfg = parse_config(text + "\nfaults:\n  seed: 4\n  rules:\n"
                       "    - {path: proc/meminfo, mutate: [empty]}\n", "c.yaml")
    assert cfg.faults.seed == 4 and cfg.faults.rules[0].action == "mutate"
    with pytest.raises(ConfigError) as e:
        parse_config(text + "\nfaults:\n  rules:\n    - {path: x, nth: 2}\n", "c.yaml")
    assert "faults: rule 1: no action" in str(e.value)


def test_render_faults(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("rules:\n  - path: proc/meminfo\n    mutate:\n"
                    "      - set: {MemTotal: 9223372036854771712}\n      - blank_line: leading\n"
                    "  - {path: proc/vmstat, errno: EIO}\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    for name, extra in (("plain", []), ("faulty", ["--faults", str(plan)])):
        subprocess.run([sys.executable, "-m", "pseudofs", "render", str(tmp_path / name), *extra],
                       check=True, env=env)
    plain = (tmp_path / "plain/proc/meminfo").read_bytes()
    want = b"\n" + mutate.set_value(plain, "MemTotal", "9223372036854771712")
    assert (tmp_path / "faulty/proc/meminfo").read_bytes() == want != plain
    assert b"MemTotal:       9223372036854771712 kB\n" in want
    # errnos need a mount: the other files are the same
    for rel in ("proc/vmstat", "proc/stat", "sys/fs/cgroup/memory.stat"):
        assert (tmp_path / "faulty" / rel).read_bytes() == (tmp_path / "plain" / rel).read_bytes()
