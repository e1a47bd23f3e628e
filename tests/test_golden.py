"""Golden files: every file the tree renders, byte for byte, for both accounting modes.

The tree is built from tests/golden/config.yaml (the 3-node machine of the mount issue: node 0
CPUs 0-2, node 1 CPU 3, node 2 memory-only, possible CPUs 0-5) with `kernel.accounting` set per
mode, walked with `pseudofs.cli.walk` (what `pseudofs render` writes) and compared with
tests/golden/<mode>/<path>. `pytest --update-golden` rewrites them (review the diff before
committing it!). A few targeted checks pin the kernel's key orders independently of the
golden bytes, so a regenerated golden file cannot silently bless a wrong order.
"""

import dataclasses
import difflib
import os
import shutil

import pytest

from pseudofs.fs.routes import build_tree
from pseudofs.cli import walk
from pseudofs.config import parse_config
from pseudofs.fs.tree import Caller
from pseudofs.model.procs import NoHost

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
CONFIG = os.path.join(GOLDEN, "config.yaml")
MODES = ("per-node", "memcg")
HINT = "run `python3 -m pytest tests/test_golden.py --update-golden` and review the diff"


def golden_config():
    # named relative to the repository: percpu_test/check's header names the config file
    with open(CONFIG, encoding="utf-8") as f:
        return parse_config(f.read(), "tests/golden/config.yaml")


def build(mode: str, version: str = None):
    """The golden config's tree in accounting `mode` (and kernel `version`, if given)."""
    config = golden_config()
    kernel = dataclasses.replace(config.kernel, accounting=mode)
    if version is not None:
        kernel = dataclasses.replace(kernel, version=version)
    return build_tree(dataclasses.replace(config, kernel=kernel), NoHost())


def render(mode: str) -> dict:
    """{path: bytes} of every readable file of the golden config in accounting `mode`."""
    return dict(walk(build(mode)))


def attributes(tree, path="/") -> list:
    """One line per entry, readable or not (write-only files and directories included):
    "path kind mode uid gid st_size", depth first, sorted."""
    caller = Caller()
    lines = []
    for name in sorted(tree.readdir(path, caller)):
        child = path.rstrip("/") + "/" + name
        a = tree.getattr(child, caller)
        lines.append("%s %s %04o %d %d %d\n" % (child, "d" if a.is_dir else "f", a.mode, a.uid,
                                                 a.gid, a.size))
        if a.is_dir:
            lines.extend(attributes(tree, child))
    return lines


_cache = {}


def rendered(mode: str) -> dict:
    if mode not in _cache:
        _cache[mode] = render(mode)
    return _cache[mode]


def golden_files(mode: str) -> dict:
    """{path: bytes} of tests/golden/<mode>/."""
    return files_under(os.path.join(GOLDEN, mode))


def files_under(base: str) -> dict:
    """{"/relative/path": bytes} of every file below `base`."""
    out = {}
    for dirpath, _dirs, files in os.walk(base):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out["/" + os.path.relpath(full, base)] = f.read()
    return out


def write_golden(mode: str, files: dict) -> None:
    base = os.path.join(GOLDEN, mode)
    shutil.rmtree(base, ignore_errors=True)
    for path, data in files.items():
        out = os.path.join(base, path.lstrip("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)


def _diff(path: str, want: bytes, got: bytes) -> str:
    lines = difflib.unified_diff(
        want.decode("latin-1").splitlines(True), got.decode("latin-1").splitlines(True),
        "golden" + path, "rendered" + path, n=1)
    text = "".join(lines)
    if not text:   # differs only in something splitlines hides (trailing newline, \r)
        text = "golden %r\nrendered %r\n" % (want[-40:], got[-40:])
    return text


@pytest.mark.parametrize("mode", MODES)
def test_golden(mode, request):
    got = rendered(mode)
    assert got, "the walk rendered nothing"
    if request.config.getoption("--update-golden"):
        write_golden(mode, got)
    want = golden_files(mode)
    if not want:
        pytest.fail("no golden files in tests/golden/%s: %s" % (mode, HINT))
    problems = []
    missing = sorted(set(got) - set(want))
    if missing:
        problems.append("%d rendered file(s) have no golden file (%s):\n  %s"
                        % (len(missing), HINT, "\n  ".join(missing)))
    extra = sorted(set(want) - set(got))
    if extra:
        problems.append("%d golden file(s) are no longer rendered (%s):\n  %s"
                        % (len(extra), HINT, "\n  ".join(extra)))
    differ = [p for p in sorted(set(got) & set(want)) if got[p] != want[p]]
    if differ:
        shown = "\n".join(_diff(p, want[p], got[p]) for p in differ[:5])
        problems.append("%d file(s) differ from the golden bytes (%s):\n  %s\n%s"
                        % (len(differ), HINT, "\n  ".join(differ), shown))
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("mode", MODES)
def test_golden_attributes(mode, request):
    """Modes, owners and st_size of every entry (tests/golden/<mode>.attrs): these cover the
    write-only files (cgroup.kill, memory.reclaim, percpu_test/free) the byte walk skips."""
    got = "".join(attributes(build(mode)))
    path = os.path.join(GOLDEN, mode + ".attrs")
    if request.config.getoption("--update-golden"):
        with open(path, "w") as f:
            f.write(got)
    if not os.path.exists(path):
        pytest.fail("no %s: %s" % (os.path.relpath(path, HERE), HINT))
    with open(path) as f:
        want = f.read()
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "golden", "rendered", n=0))
        pytest.fail("attributes differ from %s (%s):\n%s" % (path, HINT, diff[:4000]))


@pytest.mark.parametrize("mode", MODES)
def test_render_is_deterministic(mode):
    """The same config gives the same bytes (README, Model choices: the model is deterministic)."""
    assert render(mode) == rendered(mode)


# --- targeted key-order checks against the kernel ---------------------------------------------
def _keys(data: bytes) -> list:
    return [line.split(b" ", 1)[0].decode() for line in data.splitlines()]


def _cgroup_dirs(files: dict) -> list:
    return sorted({p.rsplit("/", 1)[0] for p in files if p.endswith("/memory.stat")})


NUMA_STAT_HEAD = ["anon", "file", "kernel_stack", "pagetables", "sec_pagetables"]
MEMORY_STAT_HEAD = ["anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables",
                    "percpu", "sock", "vmalloc", "shmem"]


@pytest.mark.parametrize("mode", MODES)
def test_numa_stat_percpu_row(mode):
    """mm/memcontrol.c memory_stats[]: percpu is the 6th row of memory.numa_stat after the patch,
    absent before it (MEMCG_PERCPU_B is a memcg-only item); memcg-only keys never appear."""
    files = rendered(mode)
    dirs = _cgroup_dirs(files)
    assert len(dirs) == 4     # root, /app, /batch, /batch/job
    for d in dirs:
        keys = _keys(files[d + "/memory.numa_stat"])
        assert keys[:5] == NUMA_STAT_HEAD, d
        if mode == "per-node":
            assert keys[5] == "percpu", d
            assert keys[6:8] == ["vmalloc", "shmem"], d
        else:
            assert "percpu" not in keys, d
            assert keys[5:7] == ["vmalloc", "shmem"], d
        for memcg_only in ("kernel", "sock", "zswap", "zswapped", "slab", "pgscan", "pgsteal"):
            assert memcg_only not in keys, (d, memcg_only)
        # every row lists the N_MEMORY nodes (all three here), ascending
        for line in files[d + "/memory.numa_stat"].splitlines():
            assert [f.split(b"=")[0] for f in line.split()[1:]] == [b"N0", b"N1", b"N2"], line


@pytest.mark.parametrize("mode", MODES)
def test_memory_stat_percpu_is_7th(mode):
    """mm/memcontrol.c memory_stats[]: percpu is line 7 in both modes; the patch does not move it."""
    files = rendered(mode)
    for d in _cgroup_dirs(files):
        keys = _keys(files[d + "/memory.stat"])
        assert keys[:10] == MEMORY_STAT_HEAD, d
        assert keys.index("slab") == keys.index("slab_unreclaimable") + 1, d
        assert keys.count("percpu") == 1, d


@pytest.mark.parametrize("mode", MODES)
def test_nr_percpu_last_node_item(mode):
    """mm/vmstat.c vmstat_text[]: nr_percpu right after nr_kernel_file_pages (last node item) in
    /proc/vmstat and the last line of every nodeN/vmstat in per-node mode; nowhere in memcg."""
    files = rendered(mode)
    keys = _keys(files["/proc/vmstat"])
    assert keys[-1] == "nr_unstable"
    i = keys.index("nr_kernel_file_pages")
    assert keys[i - 1] == "nr_balloon_pages"
    assert keys[i + 2 if mode == "per-node" else i + 1] == "nr_dirty_threshold"
    node_vmstats = sorted(p for p in files if p.endswith("/vmstat") and "/node/node" in p)
    assert len(node_vmstats) == 3
    for p in node_vmstats:
        nkeys = _keys(files[p])
        assert nkeys[0] == "nr_free_pages", p
        assert "nr_dirty_threshold" not in nkeys and "nr_unstable" not in nkeys, p
    if mode == "per-node":
        assert keys[i + 1] == "nr_percpu"
        for p in node_vmstats:
            assert _keys(files[p])[-2:] == ["nr_kernel_file_pages", "nr_percpu"], p
    else:
        assert "nr_percpu" not in keys
        for p in node_vmstats:
            assert _keys(files[p])[-1] == "nr_kernel_file_pages", p


def _row(data: bytes, key: str) -> str:
    for line in data.decode().splitlines():
        if line.split(" ", 1)[0] == key:
            return line
    return None


@pytest.mark.parametrize("mode", MODES)
def test_issue_scenario_values(mode):
    """The mount issue's worked scenario: /app holds `alloc size=64 count=100` only."""
    files = rendered(mode)
    app = "/sys/fs/cgroup/app/"
    if mode == "per-node":
        assert _row(files[app + "memory.numa_stat"], "percpu") == "percpu N0=25600 N1=8500 N2=0"
        assert _row(files[app + "memory.stat"], "percpu") == "percpu 34100"
    else:
        assert _row(files[app + "memory.numa_stat"], "percpu") is None
        assert _row(files[app + "memory.stat"], "percpu") == "percpu 51200"


@pytest.mark.parametrize("mode", MODES)
def test_config_values_read_back(mode):
    """The config's limits read back as the kernel prints them (limit format, page floor)."""
    files = rendered(mode)
    cg = "/sys/fs/cgroup/"
    assert files[cg + "app/memory.max"] == b"%d\n" % (256 << 20)
    assert files[cg + "app/memory.high"] == b"%d\n" % (128 << 20)
    assert files[cg + "batch/memory.low"] == b"1048576\n"
    assert files[cg + "batch/memory.high"] == b"max\n"
    assert files[cg + "batch/job/memory.max"] == b"98304\n"      # 100000 floored to pages
    assert files[cg + "batch/job/memory.oom.group"] == b"1\n"
    assert files[cg + "batch/cgroup.subtree_control"] == b"memory\n"
    assert files[cg + "app/cgroup.subtree_control"] == b""
    assert files[cg + "batch/job/cgroup.controllers"] == b"memory\n"
    # memory files exist only where the parent enabled memory; root has no limits files
    assert cg + "memory.max" not in files and cg + "memory.current" not in files
