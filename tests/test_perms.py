"""Permissions like the kernel's, checked with a real unprivileged user the test creates.

- The default mount is private to the user who mounted it (FUSE without allow_other).
- With `--allow-other` the kernel enforces the modes and owners the files report
  (default_permissions): debugfs is root-only, so are root's cgroup files.
- Delegation as in Documentation/admin-guide/cgroup-v2.rst: chown of a cgroup directory with its
  cgroup.procs, cgroup.threads and cgroup.subtree_control lets the delegate create cgroups below
  it, move its processes between cgroups it may write, given write access to the common
  ancestor's cgroup.procs (cgroup_procs_write_permission()), and enable controllers below it,
  but not change the delegated cgroup's own memory.max.
"""

import errno
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from daemon_util import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd")
                                or not shutil.which("setpriv"),
                                reason="needs root, useradd and setpriv")

CG = "/sys/fs/cgroup"
USER_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
# One operation as the user: prints OK or the errno's name.
OP = r"""
import errno, os, sys
op, path, arg = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    if op == "write":
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, arg.encode())
        finally:
            os.close(fd)
    elif op == "read":
        open(path, "rb").read()
    elif op == "list":
        os.listdir(path)
    elif op == "stat":
        os.stat(path)
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "rmdir":
        os.rmdir(path)
    elif op == "chown":
        os.chown(path, int(arg), -1)
    elif op == "chmod":
        os.chmod(path, int(arg, 8))
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


@pytest.fixture
def user():
    """A fresh unprivileged user (and its group), removed afterwards."""
    name = "pfs5" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        pw = pwd.getpwnam(name)
        yield pw.pw_uid, pw.pw_gid
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def as_user(uid, gid):
    base = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--"]

    def run(op, path, arg=""):
        r = subprocess.run(base + [USER_PY, "-c", OP, op, path, str(arg)], capture_output=True,
                           text=True, timeout=30, cwd="/")
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def spawn(*cmd):
        return subprocess.Popen(base + list(cmd), cwd="/")
    run.spawn = spawn
    return run


@pytest.fixture
def shared_dir():
    """Mountpoints where another user can reach them (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="pseudofs-perms-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_default_mount_is_private_to_its_user(shared_dir, daemons, user):
    mnt = os.path.join(shared_dir, "private")
    daemons.mount(mnt)
    u = as_user(*user)
    assert u("stat", mnt + "/proc/meminfo") == "EACCES"
    assert u("list", mnt) == "EACCES"
    assert u("read", mnt + CG + "/memory.stat") == "EACCES"
    with open(mnt + "/proc/meminfo") as f:          # the owner (root here) gets in
        assert "Percpu:" in f.read()


def test_root_only_files_and_delegation(shared_dir, daemons, user):
    uid, gid = user
    mnt = os.path.join(shared_dir, "shared")
    daemons.mount(mnt, "--allow-other")
    u = as_user(uid, gid)
    cg = mnt + CG
    outside = deleg_proc = None
    try:
        # what anybody may read, and what only root may touch
        assert u("read", mnt + "/proc/meminfo") == "OK"
        assert u("read", cg + "/memory.stat") == "OK"
        assert u("list", mnt + "/sys/kernel/debug") == "EACCES"
        assert u("read", mnt + "/sys/kernel/debug/percpu_stats") == "EACCES"
        assert u("write", mnt + "/sys/kernel/debug/percpu_test/alloc", "size=8") == "EACCES"
        assert u("write", mnt + "/sys/devices/system/cpu/cpu1/online", "0") == "EACCES"
        assert u("write", cg + "/cgroup.subtree_control", "-memory") == "EACCES"
        assert u("mkdir", cg + "/mine") == "EACCES"
        assert u("chown", cg + "/cgroup.procs", uid) == "EPERM"

        # delegation: the directory and three files, as Documentation/admin-guide/cgroup-v2.rst
        os.mkdir(cg + "/deleg")
        os.mkdir(cg + "/other")
        for p in ("", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"):
            os.chown(cg + "/deleg" + p, uid, gid)
        assert os.stat(cg + "/deleg/memory.max").st_uid == 0       # not handed over
        assert u("mkdir", cg + "/deleg/a") == "OK"
        assert u("mkdir", cg + "/deleg/b") == "OK"
        assert os.stat(cg + "/deleg/a").st_uid == uid               # the creator owns it
        assert os.stat(cg + "/deleg/a/cgroup.procs").st_uid == uid
        assert u("mkdir", cg + "/other/x") == "EACCES"

        deleg_proc = u.spawn("sleep", "600")        # the delegate's processes
        outside = u.spawn("sleep", "600")
        p, q = deleg_proc.pid, outside.pid
        wait_until(lambda: open("/proc/%d/status" % p).read().count("\nUid:\t%d" % uid) == 1)
        with open(cg + "/deleg/a/cgroup.procs", "w") as f:        # root places one inside
            f.write(str(p))
        # within the delegated subtree: the common ancestor /deleg is the delegate's
        assert u("write", cg + "/deleg/b/cgroup.procs", p) == "OK"
        assert open(cg + "/deleg/b/cgroup.procs").read() == "%d\n" % p
        # a thread cannot leave its domain: EOPNOTSUPP (errorcode names it ENOTSUP)
        assert u("write", cg + "/deleg/a/cgroup.threads", p) == "ENOTSUP"
        # from outside into it: the common ancestor is the root, whose cgroup.procs is root's
        assert u("write", cg + "/deleg/a/cgroup.procs", q) == "EACCES"
        assert open(cg + "/deleg/a/cgroup.procs").read() == ""
        # out of it: the destination is not the delegate's (the VFS refuses the open)
        assert u("write", cg + "/other/cgroup.procs", p) == "EACCES"
        assert u("write", cg + "/cgroup.procs", p) == "EACCES"
        # root may do all of it
        with open(cg + "/deleg/a/cgroup.procs", "w") as f:
            f.write(str(q))
        with open(cg + "/deleg/b/cgroup.procs", "w") as f:
            f.write(str(q))

        # controllers below, limits below, but not the delegated cgroup's own limits
        assert u("write", cg + "/deleg/cgroup.subtree_control", "+memory") == "OK"
        assert u("write", cg + "/deleg/b/memory.max", "1M") == "OK"
        assert open(cg + "/deleg/b/memory.max").read() == "1048576\n"
        assert u("write", cg + "/deleg/memory.max", "1M") == "EACCES"
        assert u("write", cg + "/deleg/memory.high", "1M") == "EACCES"
        assert u("chmod", cg + "/deleg/memory.max", "666") == "EPERM"
        assert open(cg + "/deleg/memory.max").read() == "max\n"
        assert u("write", cg + "/deleg/cgroup.procs", p) == "EBUSY"   # no internal processes
        assert u("write", cg + "/deleg/a/cgroup.subtree_control", "+memory") == "OK"
        assert u("write", cg + "/deleg/b/cgroup.subtree_control", "+memory") == "EBUSY"
        assert u("rmdir", cg + "/deleg/a") == "OK"
        assert u("rmdir", cg + "/other") == "EACCES"
        assert u("chown", cg + "/deleg/b", 0) == "EPERM"
    finally:
        for proc in (deleg_proc, outside):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_procs_write_permission_follows_the_opener():
    """The rule itself, in the model: common ancestor, owner/group/other bits, root."""
    from pseudofs.boot import build_model
    from pseudofs.config import parse_config
    from pseudofs.errors import ModelError
    from pseudofs.files.perms import procs_write_permission
    from pseudofs.fs.tree import Caller
    m = build_model(parse_config("cgroups:\n  - path: /d\n  - path: /d/a\n  - path: /d/b\n"
                                 "  - path: /o\n"))
    d, a, b, o = (m.lookup(p) for p in ("/d", "/d/a", "/d/b", "/o"))
    user, other = Caller(1234, 1234, 1), Caller(999, 1234, 1)
    d.file_owner["cgroup.procs"] = (1234, 1234)
    procs_write_permission(user, a, b, 0o644)          # common ancestor /d: the user's
    procs_write_permission(Caller(0, 0, 1), o, a, 0o644)
    for caller, src, dst in ((user, o, a), (user, m.root, a), (other, a, b)):
        with pytest.raises(ModelError) as e:
            procs_write_permission(caller, src, dst, 0o644)
        assert e.value.errno == errno.EACCES
    d.file_mode["cgroup.procs"] = 0o664                 # the group may write it now
    procs_write_permission(other, a, b, 0o644)
