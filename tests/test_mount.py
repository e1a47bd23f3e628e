"""The model mounted for real, read and written with real programs."""

import errno
import os
import subprocess
import sys
import time

import pytest

from helpers import three_nodes

SCENARIO = """
kernel: {accounting: %s}
""" + three_nodes("4G").replace("%", "%%") + """\
cgroups:
  - path: /app
"""


def sh(cmd: str, check=True) -> str:
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    if check and r.returncode:
        raise AssertionError(f"{cmd!r} failed: {r.stderr}")
    return r.stdout


def numa(text: str, key: str) -> dict:
    for line in text.splitlines():
        k, *cols = line.split()
        if k == key:
            return {c.split("=")[0]: int(c.split("=")[1]) for c in cols}
    return {}


def kv(text: str) -> dict:
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_worked_scenario(mounted, mode):
    mnt = mounted(SCENARIO % mode)
    cg = f"{mnt}/sys/fs/cgroup/app"
    sh(f"echo 'size=64 count=100 cgroup=/app' > {mnt}/sys/kernel/debug/percpu_test/alloc")
    stat = kv(sh(f"cat {cg}/memory.stat"))
    numa_stat = sh(f"cat {cg}/memory.numa_stat")
    if mode == "per-node":
        assert sh(f"grep ^percpu {cg}/memory.numa_stat") == "percpu N0=25600 N1=8500 N2=0\n"
        assert stat["percpu"] == 34100
    else:
        assert stat["percpu"] == 51200
        assert numa(numa_stat, "percpu") == {}             # no percpu row before the patch
        assert numa(numa_stat, "anon") == {"N0": 0, "N1": 0, "N2": 0}   # the file is there


def test_node_vmstat_sums_and_percpu_pages(mounted):
    mnt = mounted(SCENARIO % "per-node")
    sh(f"echo 'size=4096 count=300 cgroup=/app' > {mnt}/sys/kernel/debug/percpu_test/alloc")
    total = int(sh(f"grep ^nr_percpu {mnt}/proc/vmstat").split()[1])
    per_node = [int(x.split()[-1]) for x in
                sh(f"grep -h ^nr_percpu {mnt}/sys/devices/system/node/node*/vmstat").split("\n")
                if x]
    assert total == sum(per_node) > 0
    # node stat = populated dynamic pages x nr_cpus_node: node 0 has 3 CPUs, node 1 one
    assert per_node[0] == 3 * per_node[1] and per_node[2] == 0
    free = [int(x.split()[-1]) for x in sh(
        f"grep -h ^nr_free_pages {mnt}/sys/devices/system/node/node*/vmstat").split("\n") if x]
    assert sum(free) == int(sh(f"grep ^nr_free_pages {mnt}/proc/vmstat").split()[1])


def test_dd_bs1_reads_one_snapshot(mounted):
    mnt = mounted(SCENARIO % "per-node")
    path = f"{mnt}/sys/kernel/debug/percpu_stats"
    whole = sh(f"cat {path}")
    assert sh(f"dd if={path} bs=1 status=none") == whole
    # a slow byte-wise reader keeps its snapshot while the model changes underneath
    fd = os.open(path, os.O_RDONLY)
    try:
        first = os.read(fd, 1)
        sh(f"echo 'size=8 count=50 cgroup=/app' > {mnt}/sys/kernel/debug/percpu_test/alloc")
        rest = b""
        while True:
            b = os.read(fd, 7)
            if not b:
                break
            rest += b
        assert (first + rest).decode() == whole
    finally:
        os.close(fd)
    assert sh(f"cat {path}") != whole


def test_modes_owners_sizes_and_listing(mounted):
    mnt = mounted(SCENARIO % "per-node")
    st = os.stat(f"{mnt}/sys/devices/system/node/node0/vmstat")
    assert (st.st_mode & 0o777, st.st_size) == (0o444, 4096)
    assert os.stat(f"{mnt}/proc/vmstat").st_size == 0
    assert os.stat(f"{mnt}/sys/fs/cgroup/app/memory.max").st_mode & 0o777 == 0o644
    assert os.stat(f"{mnt}/sys/fs/cgroup/app/cgroup.kill").st_mode & 0o777 == 0o200
    assert os.stat(f"{mnt}/sys/devices/system/cpu/cpu1/online").st_mode & 0o777 == 0o644
    assert not os.path.exists(f"{mnt}/sys/devices/system/cpu/cpu0/online")
    root = set(os.listdir(f"{mnt}/sys/fs/cgroup"))
    assert {"memory.stat", "memory.numa_stat", "cgroup.procs", "app"} <= root
    assert "memory.max" not in root and "memory.current" not in root
    assert sh(f"cat {mnt}/sys/fs/cgroup/cgroup.controllers") == "memory\n"


def test_files_appear_and_vanish_at_once(mounted):
    mnt = mounted(SCENARIO % "per-node")
    cgroot = f"{mnt}/sys/fs/cgroup"
    os.mkdir(f"{cgroot}/app/x")
    stat_file = f"{cgroot}/app/x/memory.stat"
    assert not os.path.exists(stat_file)
    sh(f"echo +memory > {cgroot}/app/cgroup.subtree_control")
    assert subprocess.run(["test", "-e", stat_file]).returncode == 0
    assert os.stat(stat_file).st_mode & 0o777 == 0o444
    sh(f"echo -memory > {cgroot}/app/cgroup.subtree_control")
    assert subprocess.run(["test", "-e", stat_file]).returncode == 1
    os.chown(f"{cgroot}/app/x", 1234, 1234)
    assert os.stat(f"{cgroot}/app/x").st_uid == 1234
    os.rmdir(f"{cgroot}/app/x")
    assert subprocess.run(["test", "-e", f"{cgroot}/app/x"]).returncode == 1
    with pytest.raises(PermissionError):
        os.rename(f"{cgroot}/app", f"{cgroot}/app2")


def test_joined_process_allocates_in_its_cgroup(mounted):
    """A subprocess joins /app through cgroup.procs, then writes alloc without cgroup=."""
    mnt = mounted(SCENARIO % "per-node")
    cg = f"{mnt}/sys/fs/cgroup/app"
    script = (f"echo 0 > {cg}/cgroup.procs && cat {mnt}/proc/self/cgroup && "
              f"echo 'size=64 count=100 tag=mine' > {mnt}/sys/kernel/debug/percpu_test/alloc")
    out = sh(script)
    assert out == "0::/app\n"
    listing = sh(f"cat {mnt}/sys/kernel/debug/percpu_test/alloc")
    assert "tag=mine cgroup=/app size=64 align=8 count=100 account=1" in listing
    assert numa(sh(f"cat {cg}/memory.numa_stat"), "percpu") == {"N0": 25600, "N1": 8500,
                                                                "N2": 0}
    # the test process itself never joined: its cgroup is the root
    assert open(f"{mnt}/proc/self/cgroup").read() == "0::/\n"


def test_a_process_that_exited_has_left_its_cgroup(mounted):
    """cgroup_exit() takes an exiting task off its cgroup: once the shell that joined /app/job
    has exited, cgroup.procs, cgroup.events and /proc no longer show it, and neither
    "+memory" (no internal processes) nor rmdir is refused with EBUSY on its account."""
    mnt = mounted(SCENARIO % "per-node")
    job = f"{mnt}/sys/fs/cgroup/app/job"
    os.mkdir(job)
    sh(f"echo +memory > {mnt}/sys/fs/cgroup/app/cgroup.subtree_control")
    proc = subprocess.Popen(["sh", "-c", f"echo 0 > {job}/cgroup.procs && read line"],
                            stdin=subprocess.PIPE)
    for _ in range(100):                      # until the shell has joined
        if open(f"{job}/cgroup.procs").read():
            break
        time.sleep(0.05)
    assert open(f"{job}/cgroup.procs").read() == f"{proc.pid}\n"
    assert "populated 1" in open(f"{job}/cgroup.events").read()
    assert str(proc.pid) in os.listdir(f"{mnt}/proc")
    with pytest.raises(AssertionError, match="Device or resource busy"):
        sh(f"echo +memory > {job}/cgroup.subtree_control")
    proc.communicate(b"\n")                  # the shell exits
    assert open(f"{job}/cgroup.procs").read() == ""
    assert "populated 0" in open(f"{job}/cgroup.events").read()
    assert str(proc.pid) not in os.listdir(f"{mnt}/proc")
    assert not os.path.exists(f"{mnt}/proc/{proc.pid}")
    sh(f"echo +memory > {job}/cgroup.subtree_control")
    os.rmdir(job)


def test_names_that_are_not_utf8(mounted):
    """kernfs takes any name bytes but "/" and "\\n": a cgroup named by one byte 0xff is made,
    listed, joined and shown in /proc/self/cgroup byte for byte; a missing one is ENOENT."""
    root = os.fsencode(mounted() + "/sys/fs/cgroup")
    with pytest.raises(FileNotFoundError):
        os.stat(root + b"/\xfe")
    os.mkdir(root + b"/\xff")
    assert b"\xff" in os.listdir(root)
    self_cgroup = root[:-len(b"/sys/fs/cgroup")] + b"/proc/self/cgroup"
    out = subprocess.run([b"sh", b"-c", b'echo 0 > "$1/\xff/cgroup.procs" && cat "$2"', b"sh",
                          root, self_cgroup], capture_output=True, check=True).stdout
    assert out == b"0::/\xff\n"
    os.rmdir(root + b"/\xff")
    assert b"\xff" not in os.listdir(root)


def test_python_reader_matches_model(mounted):
    """Parse what the mount renders and compare with a model built from the same config."""
    from pseudofs.boot import build_model
    from pseudofs.config import parse_config
    text = SCENARIO % "per-node"
    mnt = mounted(text)
    sh(f"echo 'size=100 count=37 align=16 cgroup=/app' > "
       f"{mnt}/sys/kernel/debug/percpu_test/alloc")
    model = build_model(parse_config(text))
    model.groups.alloc(100, 37, 16, model.lookup("/app"), None, True)
    memcg = model.lookup("/app").memcg
    with open(f"{mnt}/sys/fs/cgroup/app/memory.stat") as f:
        stat = kv(f.read())
    assert stat["percpu"] == memcg.stat("percpu")
    assert stat["kernel"] == memcg.stat("kernel") * 4096
    with open(f"{mnt}/sys/fs/cgroup/app/memory.current") as f:
        assert int(f.read()) == memcg.memory.usage * 4096
    with open(f"{mnt}/proc/meminfo") as f:
        percpu_kb = int([line for line in f if line.startswith("Percpu:")][0].split()[1])
    assert percpu_kb == model.kernel.pcpu.pcpu_nr_pages() * 4


def test_memory_max_enomem_counts_events(mounted):
    mnt = mounted(SCENARIO % "per-node")
    cg = f"{mnt}/sys/fs/cgroup/app"
    sh(f"echo 0 > {cg}/memory.max")
    r = subprocess.run(["bash", "-c", f"echo 'size=64 count=1 cgroup=/app' > "
                        f"{mnt}/sys/kernel/debug/percpu_test/alloc"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "Cannot allocate memory" in r.stderr
    events = kv(sh(f"cat {cg}/memory.events"))
    assert events["max"] == 18 and events["oom"] == 1 and events["oom_kill"] == 0
    assert kv(sh(f"cat {cg}/memory.stat"))["percpu"] == 0
    assert sh(f"cat {mnt}/sys/kernel/debug/percpu_test/alloc") == ""


def test_cpu_offline_changes_node_masks(mounted):
    mnt = mounted(SCENARIO % "per-node")
    sh(f"echo 0 > {mnt}/sys/devices/system/cpu/cpu2/online")
    assert sh(f"cat {mnt}/sys/devices/system/node/node0/cpulist") == "0-1\n"
    assert sh(f"cat {mnt}/sys/devices/system/cpu/online") == "0-1,3\n"
    assert sh(f"cat {mnt}/sys/devices/system/cpu/offline") == "2,4-5\n"
    sh(f"echo 'size=64 count=100 cgroup=/app' > {mnt}/sys/kernel/debug/percpu_test/alloc")
    # node 0 now has 2 online CPUs: 2*64 + mult_frac(128, 2, 6) = 128 + 42 per object
    assert numa(sh(f"cat {mnt}/sys/fs/cgroup/app/memory.numa_stat"), "percpu")["N0"] == 17000
    sh(f"echo on > {mnt}/sys/devices/system/cpu/cpu2/online")
    assert sh(f"cat {mnt}/sys/devices/system/cpu/online") == "0-3\n"


def test_cpu_topology_follows_hotplug(mounted):
    """cpuN/topology/: a package per node, a core per CPU; the directory exists while the CPU
    is online and the package masks hold the online CPUs (drivers/base/topology.c, x86)."""
    from pseudofs.render.sysfs import TOPOLOGY_FILES
    mnt = mounted(SCENARIO % "per-node")
    cpu = f"{mnt}/sys/devices/system/cpu"
    topo = lambda c, f: open(f"{cpu}/cpu{c}/topology/{f}").read()   # noqa: E731
    assert sh(f"ls -f {cpu}/cpu1/topology").split()[2:] == list(TOPOLOGY_FILES)
    for f in TOPOLOGY_FILES:
        st = os.stat(f"{cpu}/cpu1/topology/{f}")
        assert (oct(st.st_mode), st.st_size) == (oct(0o100444), 4096)
    assert [topo(1, f) for f in ("physical_package_id", "core_id", "die_id")] == \
        ["0\n", "1\n", "0\n"]
    assert topo(1, "thread_siblings_list") == topo(1, "core_cpus_list") == "1\n"
    assert topo(1, "thread_siblings") == "02\n"                  # 6 possible CPUs: 2 digits
    assert topo(1, "package_cpus_list") == topo(1, "core_siblings_list") == "0-2\n"
    assert topo(3, "physical_package_id") == "1\n" and topo(3, "core_id") == "0\n"
    sh(f"echo 0 > {cpu}/cpu2/online")
    assert not os.path.exists(f"{cpu}/cpu2/topology")
    assert os.listdir(f"{cpu}/cpu2") == ["online"]
    assert topo(1, "package_cpus_list") == "0-1\n" and topo(0, "core_siblings") == "03\n"
    sh(f"echo 1 > {cpu}/cpu2/online")
    assert topo(2, "core_id") == "2\n" and topo(0, "package_cpus_list") == "0-2\n"


def test_cli_render_matches_mount(mounted, tmp_path):
    text = SCENARIO % "memcg"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    mnt = mounted(str(cfg))
    out = tmp_path / "render"
    subprocess.run([sys.executable, "-m", "pseudofs", "render", "-c", str(cfg), str(out)],
                   check=True, timeout=60)
    for rel in ("proc/vmstat", "proc/meminfo", "sys/fs/cgroup/app/memory.stat",
                "sys/kernel/debug/percpu_stats", "sys/devices/system/node/node0/meminfo"):
        with open(f"{mnt}/{rel}", "rb") as a, open(out / rel, "rb") as b:
            assert a.read() == b.read(), rel


def test_memory_peak_reset_per_open_file(mounted):
    mnt = mounted(SCENARIO % "per-node")
    cg = f"{mnt}/sys/fs/cgroup/app"
    alloc = f"{mnt}/sys/kernel/debug/percpu_test/alloc"
    sh(f"echo 'size=32768 count=40 cgroup=/app tag=big' > {alloc}")
    peak = int(sh(f"cat {cg}/memory.peak"))
    assert peak >= int(sh(f"cat {cg}/memory.current")) > 0
    sh(f"echo 'tag=big' > {mnt}/sys/kernel/debug/percpu_test/free")
    fd = os.open(f"{cg}/memory.peak", os.O_RDWR)
    try:
        os.write(fd, b"reset\n")                    # any write resets this file's peak
        own = int(os.pread(fd, 64, 0))
        assert own == int(sh(f"cat {cg}/memory.current")) < peak
        assert int(sh(f"cat {cg}/memory.peak")) == peak   # other readers unaffected
    finally:
        os.close(fd)


def test_reclaim_says_what_the_kernel_says(mounted):
    mnt = mounted(SCENARIO % "per-node")
    cg = f"{mnt}/sys/fs/cgroup/app"
    sh(f"echo 'size=64 count=100 cgroup=/app' > {mnt}/sys/kernel/debug/percpu_test/alloc")
    r = subprocess.run(["bash", "-c", f"echo 1M > {cg}/memory.reclaim"], capture_output=True,
                       text=True)
    assert "Resource temporarily unavailable" in r.stderr
    sh(f"echo 0 > {cg}/memory.reclaim")             # nothing asked, nothing to do


def test_removed_cgroup_file_gives_enodev(mounted):
    """kernfs: a file of a removed cgroup, still open, reads and writes ENODEV (its active
    reference is gone). (fstat answers ENOENT here, where the kernel answers from the inode:
    the kernel's FUSE client sends fstat's GETATTR without the handle, and libfuse 2 cannot
    build the path of a removed node. README, Known limits.)"""
    mnt = mounted(SCENARIO % "per-node")
    os.mkdir(f"{mnt}/sys/fs/cgroup/gone")
    fd = os.open(f"{mnt}/sys/fs/cgroup/gone/cgroup.events", os.O_RDONLY)
    wfd = os.open(f"{mnt}/sys/fs/cgroup/gone/memory.high", os.O_WRONLY)
    try:
        os.rmdir(f"{mnt}/sys/fs/cgroup/gone")
        with pytest.raises(OSError) as e:
            os.pread(fd, 100, 0)
        assert e.value.errno == errno.ENODEV
        with pytest.raises(OSError) as e:
            os.write(wfd, b"max")
        assert e.value.errno == errno.ENODEV
    finally:
        os.close(fd)
        os.close(wfd)


def test_a_shared_fd_acts_for_the_task_that_writes(mounted):
    """cgroup.procs "0" and alloc without cgroup= take the writing task ("current"), not the
    one that opened the file: a child writing through an inherited descriptor moves itself."""
    mnt = mounted(SCENARIO % "per-node")
    cg = f"{mnt}/sys/fs/cgroup/app"
    fd = os.open(f"{cg}/cgroup.procs", os.O_WRONLY)
    try:
        child = subprocess.run(["bash", "-c", f"echo 0 >&{fd}; cat {mnt}/proc/self/cgroup"],
                               pass_fds=(fd,), capture_output=True, text=True, timeout=30)
    finally:
        os.close(fd)
    assert child.stdout == "0::/app\n"
    assert open(f"{mnt}/proc/self/cgroup").read() == "0::/\n"     # the opener stayed put
