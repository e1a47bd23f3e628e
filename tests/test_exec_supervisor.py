"""`pseudofs exec`'s supervisor: inside exec, statfs(2), the mount table and /proc/PID/cgroup say
cgroup2, proc and sysfs, so unmodified tools and libraries (runc, containerd, systemd-cgtop,
libcgroup, findmnt) take the mount for the real thing; `--fs-magic fuse` turns it off."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tools.toolkit import (CONFIG, TIMEOUT, kv, meminfo, missing, need, pseudofs_exec, read,
                           run, scenario)

CGROUP2, PROC, SYSFS, FUSE = "63677270", "9fa0", "62656572", "65735546"
PAGE = os.sysconf("SC_PAGE_SIZE")
ST_NOSUID, ST_NODEV, ST_NOEXEC = 2, 4, 8

# statfs(2) through ctypes, printed as JSON: the magic and the other fields of struct statfs
STATFS_PY = r"""
import ctypes, json, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
F = struct.Struct("=qqqqqqqiiqqq4q")
def show(buf):
    f = F.unpack(buf.raw)
    return {"type": "%x" % f[0], "bsize": f[1], "blocks": f[2], "files": f[5],
            "namelen": f[9], "frsize": f[10], "flags": f[11]}
def statfs(path):
    buf = ctypes.create_string_buffer(F.size)
    assert libc.statfs(path.encode(), buf) == 0, os.strerror(ctypes.get_errno())
    return show(buf)
def fstatfs(fd):
    buf = ctypes.create_string_buffer(F.size)
    assert libc.fstatfs(fd, buf) == 0, os.strerror(ctypes.get_errno())
    return show(buf)
"""


def cgroups(mnt: str) -> list:
    """Every cgroup of the model below the root, as /app, /app/web, ..."""
    top = os.path.join(mnt, "sys/fs/cgroup")
    return sorted("/" + os.path.relpath(d, top) for d, _, _ in os.walk(top) if d != top)


def python_in_exec(mnt: str, code: str, *args, fs_magic=None):
    opt = ["--fs-magic", fs_magic] if fs_magic else []
    return run([sys.executable, "-m", "pseudofs", "exec", *opt, mnt, "--", sys.executable,
                "-c", code, *args])


def test_stat_f_on_the_three_kinds_and_elsewhere(mounted, tmp_path):
    (stat,) = need("coreutils", "stat")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    os.symlink("/sys/fs/cgroup/app", tmp_path / "link")
    paths = ["/sys/fs/cgroup", "/sys/fs/cgroup/app/web/memory.stat", str(tmp_path / "link"),
             "/proc/vmstat", "/proc/meminfo", "/sys/devices/system/node",
             "/sys/devices/system/cpu/online", "/tmp", mnt + "/sys/fs/cgroup"]
    got = pseudofs_exec(mnt, "sh", "-c", 'cd /sys/fs && "$0" -f -c %t cgroup "$@"', stat,
                        *paths).stdout.split()
    real_tmp = run([stat, "-f", "-c", "%t", "/tmp"]).stdout.strip()
    assert got == [CGROUP2, CGROUP2, CGROUP2, CGROUP2, PROC, PROC, SYSFS, SYSFS, real_tmp, FUSE]
    assert real_tmp != FUSE
    # --fs-magic fuse: the mount's own answer everywhere
    r = run([sys.executable, "-m", "pseudofs", "exec", "--fs-magic", "fuse", mnt, "--", stat,
             "-f", "-c", "%t", "/sys/fs/cgroup", "/proc/vmstat"])
    assert r.stdout.split() == [FUSE, FUSE] and r.stderr == ""


def test_statfs_fields_and_fstatfs_on_a_descriptor(mounted):
    mnt = mounted(CONFIG % "memcg")
    scenario(mnt)
    out = python_in_exec(mnt, STATFS_PY + (
        "fd = os.open('/sys/fs/cgroup/app/web', os.O_RDONLY | os.O_DIRECTORY)\n"
        "f = os.open('memory.current', os.O_RDONLY, dir_fd=fd)\n"
        "os.chdir('/sys/fs/cgroup/app')\n"
        "print(json.dumps([statfs('/sys/fs/cgroup'), fstatfs(fd), fstatfs(f),\n"
        "                  statfs('/proc/self/fd/%d' % f), statfs('/proc/self/cwd/web'),\n"
        "                  statfs('/proc/stat'), fstatfs(os.open('/proc/cpuinfo', 0)),\n"
        "                  statfs('/proc')]))\n")).stdout
    cg, cg_fd, cg_file, cg_magic_link, cg_cwd, proc, proc_fd, real_proc = json.loads(out)
    assert cg["type"] == cg_fd["type"] == cg_file["type"] == CGROUP2
    assert cg == cg_fd == cg_file == cg_magic_link == cg_cwd
    assert (cg["bsize"], cg["frsize"], cg["blocks"], cg["files"], cg["namelen"]) == (
        PAGE, PAGE, 0, 0, 255)
    # the bind has the flags systemd mounts cgroup2 with
    assert cg["flags"] & (ST_NOSUID | ST_NODEV | ST_NOEXEC) == ST_NOSUID | ST_NODEV | ST_NOEXEC
    assert proc["type"] == proc_fd["type"] == PROC
    # the real /proc around the bound files is continued untouched: the same fields
    assert {k: v for k, v in proc.items() if k != "flags"} == {
        k: v for k, v in real_proc.items() if k != "flags"}


def test_children_threads_and_a_process_that_outlives_cmd(mounted, tmp_path):
    (stat,) = need("coreutils", "stat")
    mnt = mounted(CONFIG % "per-node")
    out, pidfile = tmp_path / "late", tmp_path / "pid"
    t0 = time.monotonic()
    r = pseudofs_exec(mnt, "sh", "-c", (
        'sh -c "sh -c \\"$0 -f -c %%t /sys/fs/cgroup\\""; '
        '(echo $$ > %s; sleep 0.5; "$0" -f -c %%t /sys/fs/cgroup/app /proc/stat > %s) '
        '>/dev/null 2>&1 & exit 3') % (pidfile, out), stat, check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout.split() == [CGROUP2]                      # the grandchild
    # `pseudofs exec` stayed until the background process was done, and served it
    assert time.monotonic() - t0 >= 0.5
    assert out.read_text().split() == [CGROUP2, PROC]
    # and nothing was left behind
    late = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(late, 0)
    # many threads at once, each with its own statfs and opens (a Go program is the other
    # multithreaded caller: test_go_libraries_without_their_test_switch)
    got = json.loads(python_in_exec(mnt, STATFS_PY + (
        "import threading\n"
        "res = {}\n"
        # joined first: the model's cgroup (0::/mt), not what the host's file says (0::/)
        "os.makedirs('/sys/fs/cgroup/mt', exist_ok=True)\n"
        "open('/sys/fs/cgroup/mt/cgroup.procs', 'w').write(str(os.getpid()))\n"
        "def work(i):\n"
        "    seen = set()\n"
        "    for _ in range(200):\n"
        "        seen.add(statfs('/sys/fs/cgroup/app')['type'])\n"
        "        seen.add(statfs('/proc/vmstat')['type'])\n"
        "        seen.add(open('/proc/thread-self/cgroup').read())\n"
        "        seen.add(statfs('/tmp')['type'])\n"
        "    res[i] = sorted(seen)\n"
        "ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(json.dumps(res))\n")).stdout)
    tmp = run([stat, "-f", "-c", "%t", "/tmp"]).stdout.strip()
    assert got == {str(i): sorted(["0::/mt\n", CGROUP2, PROC, tmp]) for i in range(8)}


def test_mount_table_shows_cgroup2(mounted):
    (findmnt,) = need("util-linux", "findmnt")
    mnt = mounted(CONFIG % "per-node")
    r = pseudofs_exec(mnt, "sh", "-c", '"$0" -n -t cgroup2 -o TARGET; echo ==; '
                      'cat /proc/self/mountinfo; echo ==; cat /proc/mounts; echo ==; '
                      'cat /proc/$$/mountinfo; echo ==; cat /etc/mtab', findmnt)
    targets, info, mounts, info_of_sh, mtab = r.stdout.split("==\n")
    assert targets == "/sys/fs/cgroup\n"
    assert info == info_of_sh
    if os.path.realpath("/etc/mtab").startswith("/proc/"):        # Debian: ../proc/self/mounts
        assert mtab == mounts
    dev = os.stat(mnt).st_dev
    fuse = "%d:%d" % (os.major(dev), os.minor(dev))
    entries = [line.split() for line in info.splitlines()]
    below = [e for e in entries if e[4] == "/sys/fs/cgroup" or e[4].startswith("/sys/fs/cgroup/")]
    assert len(below) == 1
    e = below[0]
    sep = e.index("-")
    assert (e[2], e[3], e[sep + 1:]) == (fuse, "/", ["cgroup2", "cgroup2",
                                                     "rw,nsdelegate,memory_recursiveprot"])
    assert e[5] == "rw,nosuid,nodev,noexec,relatime"
    ids = {x[0] for x in entries}
    assert all(x[1] in ids or x[4] == "/" for x in entries)       # every parent is shown
    # no bound file or directory shows as a mount; the mount itself still does, at MNT
    assert [x[4] for x in entries if x[2] == fuse] == [mnt, "/sys/fs/cgroup"]
    lines = [m.split() for m in mounts.splitlines()]
    assert [m for m in lines if "cgroup" in m[2]] == [
        ["cgroup2", "/sys/fs/cgroup", "cgroup2",
         "rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot", "0", "0"]]
    assert [m[1] for m in lines] == [x[4] for x in entries]      # the same mounts, in order


def test_proc_self_cgroup_after_joining(mounted):
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    r = pseudofs_exec(mnt, "sh", "-c", (
        'cat /proc/self/cgroup; echo $$ > /sys/fs/cgroup/batch/cgroup.procs; '
        'cat /proc/self/cgroup /proc/$$/cgroup "$0/proc/$$/cgroup"'), mnt)
    assert r.stdout.splitlines() == ["0::/", "0::/batch", "0::/batch", "0::/batch"]
    # a thread's own file, the process joined from the thread
    r = python_in_exec(mnt, (
        "import os, threading\n"
        "def t():\n"
        "    open('/sys/fs/cgroup/app/web/cgroup.procs', 'w').write(str(os.getpid()))\n"
        "    print(open('/proc/thread-self/cgroup').read(), end='')\n"
        "th = threading.Thread(target=t); th.start(); th.join()\n"
        "print(open('/proc/self/cgroup').read(), end='')\n"))
    assert r.stdout.splitlines() == ["0::/app/web", "0::/app/web"]
    # the descriptor handed over: read-only, seekable, close-on-exec only when asked for
    r = python_in_exec(mnt, (
        "import ctypes, os\n"
        "fd = os.open('/proc/self/cgroup', os.O_RDONLY)\n"
        "try:\n"
        "    os.write(fd, b'0')\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
        "print(os.read(fd, 100) == os.pread(fd, 100, 0), os.get_inheritable(fd))\n"
        "plain = ctypes.CDLL(None).open(b'/proc/self/mountinfo', os.O_RDONLY)\n"
        "print(os.get_inheritable(plain), b' cgroup2 ' in os.read(plain, 1 << 20))\n"))
    assert r.stdout.split() == [str(errno.EBADF), "True", "False", "True", "True"]


@pytest.fixture(scope="session")
def unified(tmp_path_factory):
    """tests/tools/go/unified built offline, as tests/test_tools_go.py builds its probe."""
    go = shutil.which("go")
    if go is None:
        missing("go", "golang-go")
    gocode = "/usr/share/gocode/src/github.com/"
    for path, package in (("opencontainers/runc/libcontainer/cgroups/manager",
                           "golang-github-opencontainers-runc-dev"),
                          ("containerd/cgroups", "golang-github-containerd-cgroups-dev")):
        if not os.path.isdir(gocode + path):
            missing(gocode + path, package)
    out = tmp_path_factory.mktemp("go-unified")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOPROXY="off",
               GOFLAGS="", GOENV="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               # the build cache test_tools_go.py's probe uses too: the libraries compile once
               GOCACHE=str(tmp_path_factory.getbasetemp() / "gocache"), HOME=str(out))
    binary = str(out / "unified")
    src = os.path.join(os.path.dirname(__file__), "tools", "go", "unified")
    r = subprocess.run([go, "build", "-o", binary, "."], cwd=src, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "go build failed:\n" + r.stderr
    return binary


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_go_libraries_without_their_test_switch(mounted, unified, mode):
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    groups = cgroups(mnt)
    got = json.loads(pseudofs_exec(mnt, unified, "/", *groups).stdout)
    assert got["unified_mode"] is True
    assert got["containerd_mode"] == "Unified"
    for g in groups:
        assert got["groups"][g]["usage"] == int(read(mnt, f"sys/fs/cgroup{g}/memory.current"))
        assert got["groups"][g]["stats"] == kv(read(mnt, f"sys/fs/cgroup{g}/memory.stat"))
    assert got["groups"]["/app/web"]["stats"]["percpu"] > 0
    root = got["groups"]["/"]
    mi = meminfo(read(mnt, "proc/meminfo"))
    assert root["usage"] == (mi["MemTotal"] - mi["MemFree"]) * 1024
    assert root["stats"] == kv(read(mnt, "sys/fs/cgroup/memory.stat"))
    # the same program with statfs saying FUSE: runc picks its cgroup v1 code
    r = run([sys.executable, "-m", "pseudofs", "exec", "--fs-magic", "fuse", mnt, "--",
             unified], check=False)
    assert json.loads(r.stdout)["unified_mode"] is False


def test_systemd_cgtop_lists_every_cgroup(mounted):
    (cgtop,) = need("systemd", "systemd-cgtop")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    r = pseudofs_exec(mnt, cgtop, "-b", "-n", "1", "-m", "--raw", "--depth=10")
    shown = {f[0]: f[3] for f in (line.split() for line in r.stdout.splitlines())}
    want = {g: read(mnt, f"sys/fs/cgroup{g}/memory.current").strip() for g in cgroups(mnt)}
    assert {g: shown.get(g) for g in want} == want


def test_cgget_reads_the_model(mounted):
    (cgget,) = need("cgroup-tools", "cgget")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    r = pseudofs_exec(mnt, cgget, "-r", "memory.current", "/app", "/app/web")
    current = {g: read(mnt, f"sys/fs/cgroup{g}/memory.current").strip()
               for g in ("/app", "/app/web")}
    assert r.stdout.split() == ["/app:", "memory.current:", current["/app"],
                                "/app/web:", "memory.current:", current["/app/web"]]


def test_signals_reach_cmd_and_status_passes(mounted, tmp_path):
    mnt = mounted(CONFIG % "memcg")
    p = subprocess.Popen([sys.executable, "-m", "pseudofs", "exec", mnt, "--", "sh", "-c",
                          'trap "echo got; exit 5" USR1; echo ready; '
                          'while :; do sleep 0.05; done'],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.wait(timeout=TIMEOUT) == 5
        assert p.stdout.read() == "got\n"
    finally:
        p.kill()
        p.wait()
    # SIGKILL cannot be passed on: CMD goes with `pseudofs exec` all the same
    pidfile = tmp_path / "pid"
    p = subprocess.Popen([sys.executable, "-m", "pseudofs", "exec", mnt, "--", "sh", "-c",
                          f'echo $$ > {pidfile}; exec sleep 60'])
    try:
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
        cmd = int(pidfile.read_text())
        p.kill()
        assert p.wait(timeout=TIMEOUT) == -signal.SIGKILL
        for _ in range(100):
            try:
                os.kill(cmd, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("CMD outlived a killed `pseudofs exec`")
    finally:
        p.kill()
        p.wait()


def test_without_user_notification_one_line_and_cmd_runs(mounted):
    """Only one filter with a listener per process tree (has_duplicate_listener() in
    kernel/seccomp.c): an exec inside exec runs its CMD without a supervisor of its own, says so
    once, and the outer supervisor still answers."""
    (stat,) = need("coreutils", "stat")
    mnt = mounted(CONFIG % "memcg")
    r = pseudofs_exec(mnt, sys.executable, "-m", "pseudofs", "exec", mnt, "--", "sh", "-c",
                      '"$0" -f -c %t /sys/fs/cgroup; exit 4', stat, check=False)
    assert r.returncode == 4
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("pseudofs exec: no supervisor of its own: one already watches")
    assert r.stdout.split() == [CGROUP2]


def test_uname_reports_the_profiles_release(mounted):
    """uname(2) reports the release of the mount's kernel profile (proc/sys/kernel/osrelease);
    the system name and the machine stay the host's."""
    (uname,) = need("coreutils", "uname")
    mnt = mounted(CONFIG % "memcg")
    got = pseudofs_exec(mnt, uname, "-r", "-s", "-m").stdout.split()
    real = run([uname, "-r", "-s", "-m"]).stdout.split()
    want = read(mnt, "proc/sys/kernel/osrelease").strip()
    assert want != real[1] and got == [real[0], want, real[2]]


@pytest.mark.soak
def test_many_callers_at_once(mounted):
    """Processes and threads calling statfs and opening the mount table and cgroup files as
    fast as they can, for seconds: every answer right, nothing left waiting."""
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    code = STATFS_PY + (
        "import threading, time\n"
        "os.makedirs('/sys/fs/cgroup/mt', exist_ok=True)\n"
        "open('/sys/fs/cgroup/mt/cgroup.procs', 'w').write(str(os.getpid()))\n"
        "bad = []\n"
        "def work():\n"
        "    end = time.monotonic() + 8\n"
        "    while time.monotonic() < end:\n"
        "        if statfs('/sys/fs/cgroup/app')['type'] != '63677270': bad.append('cg')\n"
        "        if statfs('/proc/vmstat')['type'] != '9fa0': bad.append('proc')\n"
        "        if b' cgroup2 ' not in open('/proc/self/mountinfo', 'rb').read(): bad.append('mi')\n"
        "        if open('/proc/self/cgroup').read() != '0::/mt\\n': bad.append('cgroup')\n"
        "        os.close(os.open('/sys/fs/cgroup/app/memory.stat', os.O_RDONLY))\n"
        "ts = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(len(bad))\n")
    script = 'for i in 1 2 3 4; do "$0" -c "$1" & done; wait'
    r = pseudofs_exec(mnt, "sh", "-c", script, sys.executable, code)
    # four processes print their count of wrong answers into one pipe: their lines may
    # interleave, but any wrong answer is a digit other than 0, and each printed one
    assert r.stdout.replace("\n", "") == "0" * 4, r.stdout
