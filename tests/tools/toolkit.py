"""What every real-tool test needs: find the tool (fail under CI, skip locally), run it through
`pseudofs exec`, read the mount's files, and the scenario the tools are checked after.

A tool that is missing FAILS the test when CI is set (CI installs every tool: .ci/run); without CI
the test is skipped, naming the package that brings the tool.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
from typing import Dict, List

import pytest

TIMEOUT = 60          # seconds for one tool run

# The topology every tool test mounts: a memory-only node (2), a node whose CPUs have no memory
# (3), hotplug CPUs that are possible but not present (6-7), and, after the scenario, one present
# CPU taken offline (5): P = num_possible_cpus() = 10.
# The kernel profile the tool tests run on: 7.0 in the quick suite; the soak suite reruns them
# on other LTS lines (tests/test_tools_profiles.py sets PSEUDOFS_TOOL_PROFILE).
PROFILE = os.environ.get("PSEUDOFS_TOOL_PROFILE", "7.0")
CONFIG = """
kernel: {accounting: %s, version: '""" + PROFILE + """'}
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 4G}
    - {id: 1, cpus: "4-5", hotplug_cpus: "6-7", memory: 2G}
    - {id: 2, cpus: "", memory: 2G}
    - {id: 3, cpus: "8-9", memory: 0}
cgroups:
  - path: /app
    subtree_control: [memory]
    memory.max: 64M
"""
POSSIBLE = 10
ONLINE_AFTER = [0, 1, 2, 3, 4, 8, 9]           # CPU 5 goes offline in the scenario
NODE_CPUS_AFTER = {0: [0, 1, 2, 3], 1: [4], 2: [], 3: [8, 9]}
NODE_MEM_KB = {0: 4 << 20, 1: 2 << 20, 2: 2 << 20, 3: 0}
WEB_SIZE, WEB_COUNT = 256, 200                 # the objects of /app/web


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str, package: str) -> None:
    """Fail under CI (the tool should have been installed), skip otherwise."""
    msg = f"{what} is not installed (Debian/PyPI package: {package}; .ci/run installs it)"
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def need(package: str, *programs: str) -> List[str]:
    """Absolute paths of the programs, or fail/skip naming the package."""
    found = []
    for name in programs:
        path = shutil.which(name)
        if path is None:
            missing(name, package)
        found.append(path)
    return found


def run(argv, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, argv)), r.returncode, r.stdout, r.stderr))
    return r


def pseudofs_exec(mnt: str, *cmd, check=True) -> subprocess.CompletedProcess:
    """`pseudofs exec MNT -- CMD...` with this interpreter's pseudofs."""
    return run([sys.executable, "-m", "pseudofs", "exec", mnt, "--", *cmd], check=check)


def read(mnt: str, rel: str) -> str:
    with open(os.path.join(mnt, rel.lstrip("/"))) as f:
        return f.read()


def write(mnt: str, rel: str, line: str) -> None:
    with open(os.path.join(mnt, rel.lstrip("/")), "w") as f:
        f.write(line + "\n")


def kv(text: str) -> Dict[str, int]:
    """`key value` lines (vmstat, numastat, memory.stat)."""
    return {k: int(v) for k, v in (line.split() for line in text.splitlines())}


def meminfo(text: str) -> Dict[str, int]:
    """/proc/meminfo or nodeN/meminfo: label -> value (kB, or a count for HugePages_*)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(?:Node \d+ )?([^:]+):\s+(\d+)(?: kB)?$", line)
        assert m, f"not a meminfo line: {line!r}"
        out[m.group(1)] = int(m.group(2))
    return out


def node_meminfo(mnt: str, nid: int) -> Dict[str, int]:
    return meminfo(read(mnt, f"sys/devices/system/node/node{nid}/meminfo"))


def cpulist(text: str) -> List[int]:
    cpus = []
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def nodes(mnt: str) -> List[int]:
    return cpulist(read(mnt, "sys/devices/system/node/online"))


def mult_frac(x: int, n: int, d: int) -> int:
    return (x // d) * n + ((x % d) * n) // d


def percpu_per_node(size: int, count: int, node_cpus: Dict[int, list], possible: int):
    """The patch's per-node charge of `count` objects of aligned `size` (README's formula)."""
    return {nid: count * (len(c) * size + mult_frac(2 * size, len(c), possible))
            for nid, c in node_cpus.items() if c}


def scenario(mnt: str) -> None:
    """What a user does before looking with a tool: hotplug, cgroups, allocations, frees."""
    write(mnt, "sys/devices/system/cpu/cpu5/online", "0")
    os.mkdir(os.path.join(mnt, "sys/fs/cgroup/app/web"))
    os.mkdir(os.path.join(mnt, "sys/fs/cgroup/batch"))
    ctl = "sys/kernel/debug/percpu_test/"
    write(mnt, ctl + "alloc", "size=64 count=1000 cgroup=/app tag=warm")
    write(mnt, ctl + "alloc", f"size={WEB_SIZE} count={WEB_COUNT} align=64 cgroup=/app/web")
    write(mnt, ctl + "alloc", "size=8 count=500 account=0 cgroup=/batch")
    write(mnt, ctl + "alloc", "size=1K count=300 cgroup=/batch tag=gone")
    write(mnt, ctl + "free", "tag=warm count=250")
    write(mnt, ctl + "free", "tag=gone")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
