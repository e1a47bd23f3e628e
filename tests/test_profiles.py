"""Kernel profiles: for every LTS line, both accounting modes and both the default options and
all options on, the key sequence of each file the tree renders equals the list extracted from
that kernel's source (tests/data/kernel-formats, parsed and gate-evaluated by kernel_refs.py),
with the patch's lines added in per-node mode. The tree is built from a real config (the golden
machine with `kernel.version`/`kernel.config` set) and read through the route table; the keys
are parsed back out of the rendered bytes."""

import dataclasses
import os
import re

import pytest

import kernel_refs as refs
from pseudofs.fs.routes import build_tree
from pseudofs.config import load_config
from pseudofs.fs.tree import Caller
from pseudofs.model.procs import NoHost
from pseudofs.render.kconfig import OPTIONS
from pseudofs.render.profile import make_profile

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "golden", "config.yaml")
MODES = ("per-node", "memcg")
ALL_ON = tuple((name, True) for name in OPTIONS)
OPTION_SETS = {"default": (), "all": ALL_ON}


def build(version, mode, options=()):
    config = load_config(CONFIG)
    kernel = dataclasses.replace(config.kernel, accounting=mode, version=version,
                                 options=tuple(options))
    return build_tree(dataclasses.replace(config, kernel=kernel), NoHost())


def read(tree, path) -> str:
    return tree.read(tree.open(path, os.O_RDONLY, Caller())).decode()


def first_words(text):
    return [line.split()[0] for line in text.splitlines()]


def meminfo_keys(text, prefix=""):
    return [re.match(r"^" + prefix + r"([^:]+):", line).group(1) for line in text.splitlines()]


@pytest.mark.parametrize("opts", sorted(OPTION_SETS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", refs.LTS)
def test_key_sequences_follow_the_kernel_source(version, mode, opts):
    options = OPTION_SETS[opts]
    profile = make_profile(version, dict(options))
    per_node = mode == "per-node"
    tree = build(version, mode, options)
    node0 = "/sys/devices/system/node/node0/"
    assert first_words(read(tree, "/proc/vmstat")) == refs.proc_vmstat(version, profile, per_node)
    assert first_words(read(tree, node0 + "vmstat")) == refs.node_vmstat(version, profile,
                                                                         per_node)
    assert meminfo_keys(read(tree, "/proc/meminfo")) == refs.proc_meminfo(version, profile)
    for cg in ("/sys/fs/cgroup/app", "/sys/fs/cgroup/batch/job", "/sys/fs/cgroup"):
        assert first_words(read(tree, cg + "/memory.stat")) == refs.memory_stat(version, profile)
        assert (first_words(read(tree, cg + "/memory.numa_stat"))
                == refs.memory_numa_stat(version, profile, per_node))
    events = first_words(read(tree, "/sys/fs/cgroup/app/memory.events"))
    assert events[:5] == ["low", "high", "max", "oom", "oom_kill"]
    assert ("oom_group_kill" in events) == (version not in ("5.10", "5.15"))   # from 5.19
    assert first_words(read(tree, "/sys/fs/cgroup/app/memory.events.local")) == events


@pytest.mark.parametrize("version", refs.LTS)
def test_node_meminfo_follows_node_c(version):
    """drivers/base/node.c node_read_meminfo: SwapCached from 5.13, SecPageTables from 6.0,
    the THP file lines one column short before 6.6; every label but MemUsed and FilePages is
    one /proc/meminfo has too."""
    tree = build(version, "per-node", ALL_ON)
    text = read(tree, "/sys/devices/system/node/node1/meminfo")
    labels = meminfo_keys(text, r"Node 1 ")
    assert ("SwapCached" in labels) == (version != "5.10")
    assert ("SecPageTables" in labels) == (version not in ("5.10", "5.15"))
    assert ("Unaccepted" in labels) == (version not in ("5.10", "5.15", "6.1"))
    proc = refs.proc_meminfo(version, make_profile(version, dict(ALL_ON)))
    assert set(labels) - set(proc) == {"MemUsed", "FilePages"}
    line = next(line for line in text.splitlines() if "FileHugePages" in line)
    narrow = version in ("5.10", "5.15", "6.1")
    assert line == ("Node 1 FileHugePages:" + (" " if narrow else "  ") + "%8d kB" % 0)


def test_default_is_7_0_and_options_left_out_take_defaults():
    tree = build("7.0", "per-node")
    config = load_config(CONFIG)
    assert config.kernel.version == "7.0" and config.kernel.options == ()
    vmstat = first_words(read(tree, "/proc/vmstat"))
    assert "nr_vmalloc" in vmstat and "zswpin" in vmstat and "cma_alloc_success" not in vmstat
    assert "zswap_incomp" in first_words(read(tree, "/sys/fs/cgroup/app/memory.stat"))


def test_an_option_turns_its_keys_off():
    on = first_words(read(build("6.1", "memcg"), "/proc/vmstat"))
    off = first_words(read(build("6.1", "memcg", (("ZSWAP", False),)), "/proc/vmstat"))
    assert [k for k in on if k not in off] == ["zswpin", "zswpout"]


def test_kernel_config_errors_name_file_line_and_key(tmp_path):
    from pseudofs.errors import ConfigError
    path = tmp_path / "k.yaml"
    path.write_text("kernel:\n  version: 6.10\n  config:\n    ZSWAP: false\n    FOO: true\n"
                    "    CMA: maybe\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert e.value.problems == [
        f"{path}, line 2: kernel.version: must be one of 5.10, 5.15, 6.1, 6.6, 6.12, 6.18, 7.0,"
        " got '6.10'",
        f"{path}, line 5: kernel.config.FOO: unknown key (expected one of: "
        + ", ".join(OPTIONS) + ")",
        f"{path}, line 6: kernel.config.CMA: expected true/false or 0/1, got 'maybe'"]
    # An option the version does not have is accepted and changes nothing there.
    path.write_text("kernel:\n  version: '5.10'\n  config: {UNACCEPTED_MEMORY: true}\n")
    assert load_config(str(path)).kernel.options == (("UNACCEPTED_MEMORY", True),)


@pytest.mark.parametrize("version", refs.LTS)
def test_each_option_alone_off_matches_the_lists(version):
    """All options on but one, for each option: the tables' key sequences equal the lists with
    that option off (the tables' functions directly; the rendering is covered above)."""
    from pseudofs.render import meminfo as mi, memcg_stats as mc, vmstat_text as vt
    for name in OPTIONS:
        p = make_profile(version, dict(ALL_ON, **{name: False}))
        for per_node in (False, True):
            assert list(vt.proc_vmstat_names(p, per_node)) == refs.proc_vmstat(
                version, p, per_node), name
            assert [r.key for r in mc.numa_stat_rows(p, per_node)] == refs.memory_numa_stat(
                version, p, per_node), name
        assert list(mi.meminfo_labels(p)) == refs.proc_meminfo(version, p), name
        assert list(mc.memory_stat_keys(p, True, "memory_hugetlb_accounting" in p)) == \
            refs.memory_stat(version, p), name
