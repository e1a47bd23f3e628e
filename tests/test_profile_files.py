"""Per profile: which memory controller and PSI files each cgroup has (root and not), their
modes, /proc/pressure, /proc/version and /proc/sys/kernel/osrelease. The memcg files are
checked against the cftype arrays of each kernel's source (tests/data/kernel-formats), with the
registration rules of mm/memcontrol.c applied (swap files: MEMCG_SWAP and swapaccount up to
5.15, SWAP from 6.1; zswap files: ZSWAP)."""

import errno
import os
import re
import subprocess

import pytest

import kernel_refs as refs
from pseudofs.errors import ModelError
from pseudofs.fs.tree import Caller
from pseudofs.render.kconfig import OPTIONS
from pseudofs.render.profile import make_profile
from test_profiles import ALL_ON, build, read

CG = "/sys/fs/cgroup"
OPTION_SETS = {"default": (), "all": ALL_ON,
               "noswap": (("SWAP", False), ("ZSWAP", False)),
               "noaccount": (("swapaccount", False),)}


def expected_memcg_files(version, options):
    profile = make_profile(version, dict(options))
    files = refs.memcg_files(version, profile)
    old = version in ("5.10", "5.15")
    swap_on = "SWAP" in profile and (not old or "swapaccount" in profile)
    return {name: on_root for name, on_root in files.items()
            if (swap_on or not name.startswith("memory.swap."))
            and ("ZSWAP" in profile or not name.startswith("memory.zswap."))}


def memory_files(tree, path):
    caller = Caller()
    return {n: tree.getattr(path + "/" + n, caller).mode & 0o777
            for n in tree.readdir(path, caller) if n.startswith("memory.")}


@pytest.mark.parametrize("opts", sorted(OPTION_SETS))
@pytest.mark.parametrize("version", refs.LTS)
def test_memcg_files_follow_the_cftype_arrays(version, opts):
    options = OPTION_SETS[opts]
    tree = build(version, "per-node", options)
    expected = expected_memcg_files(version, options)
    psi = "memory.pressure" if dict(options).get("PSI", OPTIONS["PSI"]) else None
    child = memory_files(tree, CG + "/app")
    root = memory_files(tree, CG)
    assert set(child) - {psi} == set(expected)
    assert set(root) - {psi} == {n for n, on_root in expected.items() if on_root}
    for peak in ("memory.peak", "memory.swap.peak"):
        if peak in child:               # writable (a reset) from 6.12
            assert child[peak] == (0o644 if version in ("6.12", "6.18") else 0o444)


@pytest.mark.parametrize("version", refs.LTS + ("7.0",))
def test_psi_files_when_psi_is_on(version):
    on = build(version, "memcg", (("PSI", True),))
    off = build(version, "memcg")
    caller = Caller()
    assert "pressure" in on.readdir("/proc", caller)
    assert "pressure" not in off.readdir("/proc", caller)
    for cg in (CG, CG + "/app", CG + "/batch/job"):
        names = on.readdir(cg, caller)
        assert {"cpu.pressure", "io.pressure", "memory.pressure"} <= set(names)
        assert not {"cpu.pressure", "memory.pressure"} & set(off.readdir(cg, caller))
    zero = "avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    both = "some " + zero + "full " + zero
    for res in ("memory", "io", "cpu"):
        want = "some " + zero if (res == "cpu" and version == "5.10") else both
        assert read(on, "/proc/pressure/" + res) == want
        assert read(on, CG + "/app/%s.pressure" % res) == want
    mode = on.getattr("/proc/pressure/memory", caller).mode & 0o777
    assert mode == (0o444 if version == "5.10" else 0o666)      # 0666 from 5.13


def test_psi_trigger_writes_are_checked_like_the_kernel(mounted):
    mnt = mounted("kernel:\n  version: '6.1'\n  config: {PSI: true}\n")
    path = os.path.join(mnt, "proc/pressure/memory")
    assert subprocess.run(["cat", path], capture_output=True, check=True).stdout == (
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    fd = os.open(path, os.O_RDWR)
    try:
        os.write(fd, b"some 150000 1000000\0")
        with pytest.raises(OSError) as e:          # one trigger per open file
            os.write(fd, b"some 150000 1000000\0")
        assert e.value.errno == errno.EBUSY
    finally:
        os.close(fd)
    cgroup = os.path.join(mnt, "sys/fs/cgroup/memory.pressure")
    for where, bad in ((path, b"some 150000 1000000"),     # psi_write: the last byte is the NUL
                       (cgroup, b"some 0 1000000"), (cgroup, b"full 150000 100"),
                       (cgroup, b"none 1 2")):
        fd = os.open(where, os.O_WRONLY)
        try:
            with pytest.raises(OSError) as e:
                os.write(fd, bad)
            assert e.value.errno == errno.EINVAL, bad
        finally:
            os.close(fd)
    fd = os.open(cgroup, os.O_WRONLY)      # kernfs hands the whole buffer: no byte is lost
    try:
        assert os.write(fd, b"some 150000 1000000") == 19
    finally:
        os.close(fd)


# the release each profile says it is (a distribution-style string of that line)
WANT_RELEASE = {"5.10": "5.10.0-35-amd64", "5.15": "5.15.0-140-generic", "6.1": "6.1.0-37-amd64",
                "6.6": "6.6.87", "6.12": "6.12.43+deb13-amd64", "6.18": "6.18.9",
                "7.0": "7.0.0-rc1-mm"}


@pytest.mark.parametrize("version", refs.LTS + ("7.0",))
def test_release_strings(version):
    tree = build(version, "per-node")
    release = read(tree, "/proc/sys/kernel/osrelease")
    assert release == WANT_RELEASE[version] + "\n" and release.startswith(version + ".")
    banner = read(tree, "/proc/version")
    # linux_proc_banner: "Linux version RELEASE (BUILDER@HOST) (COMPILER) UTS_VERSION"
    assert re.fullmatch(r"Linux version %s \(\S+@\S+\) \(.+\) #\S+ SMP .+\n"
                        % re.escape(WANT_RELEASE[version]), banner), banner
    assert ("PREEMPT_DYNAMIC" in banner) == (version not in ("5.10", "5.15"))


def test_memory_peak_reset_refused_before_6_12():
    tree = build("6.6", "per-node")
    caller = Caller()
    of = tree.open(CG + "/app/memory.peak", os.O_RDONLY, caller)
    assert read(tree, CG + "/app/memory.peak").strip().isdigit()
    with pytest.raises(ModelError) as e:
        tree.open(CG + "/app/memory.peak", os.O_WRONLY, caller)
    assert e.value.errno == errno.EACCES
    assert of is not None


def test_config_refuses_a_cgroup_file_the_profile_lacks(tmp_path):
    from pseudofs.config import load_config
    from pseudofs.errors import ConfigError
    path = tmp_path / "c.yaml"
    path.write_text("kernel:\n  version: '6.6'\n  config: {SWAP: false}\ncgroups:\n"
                    "  - path: /a\n    memory.swap.max: 1M\n    memory.zswap.writeback: 0\n"
                    "    memory.max: 1M\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert e.value.problems == [
        f"{path}, line 6: cgroups[0].memory.swap.max: no such file with this kernel.version "
        "and kernel.config",
        f"{path}, line 7: cgroups[0].memory.zswap.writeback: no such file with this "
        "kernel.version and kernel.config"]


def test_cpu_full_trigger_refused_before_5_13():
    from pseudofs.psi_trigger import write
    from pseudofs.render.psi import has_full
    assert not has_full("cpu", make_profile("5.10")) and has_full("cpu", make_profile("5.15"))
    with pytest.raises(ModelError) as e:
        write(b"full 150000 1000000\n", has_full("cpu", make_profile("5.10")), {})
    assert e.value.errno == errno.EINVAL
    write(b"full 150000 1000000\n", has_full("cpu", make_profile("6.1")), {})


@pytest.mark.parametrize("release, version", [
    ("6.18.44-fc-v1252", "6.18"), ("6.8.0-45-generic", "6.6"), ("5.4.0-200", "5.10"),
    ("6.12.43+deb13-amd64", "6.12"), ("7.1.0", "7.0"), ("6.1.0-37-amd64", "6.1")])
def test_nearest_version(release, version):
    from pseudofs.render.kconfig import nearest_version
    assert nearest_version(release) == version
