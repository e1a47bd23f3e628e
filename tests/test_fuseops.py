"""The fusepy adapter and the daemon, mounted for real and read with real programs."""

import errno
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pseudofs.errors import ModelError
from pseudofs.fs import daemon, fuseops
from pseudofs.fs.tree import Attr, OpenFile

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)


class DictTree:
    """A tiny Tree: fixed files, a file re-rendered differently on every render (/gen), a control
    file (/ctl: one command per write, readable as the list of commands), a file whose read
    raises a bare exception (/boom), and /cg where mkdir and rmdir work."""

    def __init__(self):
        self.lock = threading.Lock()
        self.files = {             # path -> [mode, uid, gid, size, content]
            "/static": [0o444, 0, 0, 4096, b"hello\n"],
            "/owned": [0o644, 1234, 5678, 0, b"owned\n"],
            "/ctl": [0o644, 0, 0, 0, None],
            "/gen": [0o444, 0, 0, 0, None],
            "/boom": [0o444, 0, 0, 0, None],
        }
        self.dirs = {"/": [0o755, 0, 0], "/cg": [0o755, 0, 0]}
        self.renders = 0
        self.commands = []
        self.truncated = []

    def _parent(self, path):
        return path.rsplit("/", 1)[0] or "/"

    def getattr(self, path, caller):
        if path in self.dirs:
            mode, uid, gid = self.dirs[path]
            return Attr(is_dir=True, mode=mode, uid=uid, gid=gid, nlink=2)
        if path in self.files:
            mode, uid, gid, size, _ = self.files[path]
            return Attr(is_dir=False, mode=mode, uid=uid, gid=gid, size=size)
        raise ModelError(errno.ENOENT, path)

    def readdir(self, path, caller):
        return sorted(p.rsplit("/", 1)[1] for p in list(self.files) + list(self.dirs)
                      if p != "/" and self._parent(p) == path)

    def open(self, path, flags, caller):
        mode = self.getattr(path, caller).mode
        if (flags & os.O_ACCMODE) != os.O_RDONLY and not mode & 0o200:
            raise ModelError(errno.EACCES, "no write handler")
        return OpenFile(path, flags, caller)

    def read(self, of):
        if of.path == "/boom":
            raise RuntimeError("boom")
        if of.path == "/gen":
            self.renders += 1
            return render_gen(self.renders)
        if of.path == "/ctl":
            return b"".join(self.commands)
        return self.files[of.path][4]

    def write(self, of, data):
        if data.strip() == b"bad":
            raise ModelError(errno.EINVAL, "bad command")
        self.commands.append(data)

    def truncate(self, path, caller):
        self.truncated.append(path)

    def release(self, of):
        pass

    def mkdir(self, path, mode, caller):
        if not self._parent(path).startswith("/cg"):
            raise ModelError(errno.EPERM, "no mkdir here")
        self.dirs[path] = [mode, caller.uid, caller.gid]

    def rmdir(self, path, caller):
        if path == "/cg" or any(self._parent(p) == path for p in self.dirs):
            raise ModelError(errno.EBUSY, path)
        del self.dirs[path]

    def chown(self, path, uid, gid, caller):
        entry = self.files.get(path) or self.dirs[path]
        entry[1] = entry[1] if uid == -1 else uid
        entry[2] = entry[2] if gid == -1 else gid

    def chmod(self, path, mode, caller):
        (self.files.get(path) or self.dirs[path])[0] = mode


def render_gen(n):
    return b"".join(b"%d:%d\n" % (n, i) for i in range(20 + n % 7))


def assert_one_render(data):
    """data is exactly one render of /gen; returns its generation."""
    n = int(data.split(b":", 1)[0])
    assert data == render_gen(n)
    return n


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def errno_of(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


@pytest.fixture
def tree():
    return DictTree()


@pytest.fixture(params=fuseops.THREAD_MODELS)
def mnt(mount_tree, tree, request):
    """The tree mounted with each of libfuse's loops (`pseudofs mount --threads`)."""
    return mount_tree(tree, threads=request.param)


def test_only_implemented_operations_are_registered(tree):
    names = set(fuseops.registered_operations(fuseops.FuseOps(tree)))
    assert {"getattr", "fgetattr", "readdir", "open", "read", "write", "truncate", "ftruncate",
            "release", "mkdir", "rmdir", "rename", "create", "statfs", "init"} <= names
    # not registered: libfuse answers ENOSYS once and the kernel stops sending them
    assert not names & {"flush", "fsync", "access", "opendir", "getxattr", "lock", "destroy"}


def test_mount_options_as_the_kernel_shows_them(mount_tree, tree):
    plain, shared = mount_tree(tree), mount_tree(DictTree(), name="shared", allow_other=True)
    rows = {line.split()[4]: line for line in open("/proc/self/mountinfo")}
    assert " - fuse.pseudofs pseudofs " in rows[plain]
    assert "allow_other" not in rows[plain]
    assert "default_permissions" in rows[shared] and "allow_other" in rows[shared]


def test_cat_readdir_and_stat(mnt):
    assert run("cat", mnt + "/static").stdout == "hello\n"
    assert run("ls", "-a", mnt).stdout.split() == sorted(
        [".", "..", "boom", "cg", "ctl", "gen", "owned", "static"])
    assert sorted(os.listdir(mnt + "/cg")) == []
    out = run("stat", "-c", "%a %s %u %g %F", mnt + "/static", mnt + "/owned", mnt + "/cg")
    assert out.stdout.splitlines() == ["444 4096 0 0 regular file",
                                       "644 0 1234 5678 regular empty file",
                                       "755 0 0 0 directory"]


def test_reads_are_not_cut_at_st_size(mnt, tree):
    # /owned reports st_size 0 like procfs; direct_io makes the read reach us anyway
    assert run("cat", mnt + "/owned").stdout == "owned\n"
    with open(mnt + "/owned", "rb") as f:
        assert f.read() == b"owned\n"


def test_dd_bs1_reads_one_snapshot_while_content_changes(mnt, tree):
    stop = threading.Event()

    def hammer():                      # re-renders /gen through other open files meanwhile
        while not stop.is_set():
            fd = os.open(mnt + "/gen", os.O_RDONLY)
            os.read(fd, 4096)
            os.close(fd)
    t = threading.Thread(target=hammer)
    t.start()
    try:
        r = subprocess.run(["dd", "if=" + mnt + "/gen", "bs=1", "status=none"],
                           capture_output=True, timeout=60)
    finally:
        stop.set()
        t.join(10)
    assert r.returncode == 0, r.stderr
    assert_one_render(r.stdout)
    assert tree.renders > 1


def test_odd_read_sizes_and_reread_at_offset_zero(mnt, tree):
    with open(mnt + "/gen", "rb", buffering=0) as f:
        parts, sizes = [], itertools.cycle([1, 3, 7, 2, 13, 5, 64])
        while True:
            chunk = f.read(next(sizes))
            if not chunk:
                break
            parts.append(chunk)
            with open(mnt + "/gen", "rb") as other:     # content changes between our reads
                other.read()
        first = assert_one_render(b"".join(parts))
        f.seek(0)                      # a read at offset 0 renders afresh
        assert assert_one_render(f.read()) > first
    with open(mnt + "/gen", "rb") as f:                 # buffered reads of 8 KiB
        assert assert_one_render(f.read()) > first


def test_second_open_sees_new_content(mnt, tree):
    assert run("cat", mnt + "/static").stdout == "hello\n"
    tree.files["/static"][4] = b"changed\n"
    assert run("cat", mnt + "/static").stdout == "changed\n"


def test_each_write_call_is_one_command(mnt, tree):
    fd = os.open(mnt + "/ctl", os.O_WRONLY)
    try:
        assert os.write(fd, b"a") == 1
        assert os.write(fd, b"bc d\n") == 5
        assert os.pwrite(fd, b"z", 1000) == 1          # the offset is ignored
        assert os.write(fd, b"k" * 100000) == 100000   # big_writes: still one request
        assert errno_of(os.write, fd, b"bad\n") == errno.EINVAL
    finally:
        os.close(fd)
    assert tree.commands == [b"a", b"bc d\n", b"z", b"k" * 100000]
    del tree.commands[:]
    r = run("sh", "-c", 'printf "one two\\nthree\\n" > ctl && printf x > ctl && echo y > ctl',
            cwd=mnt)
    assert r.returncode == 0, r.stderr
    assert tree.commands == [b"one two\nthree\n", b"x", b"y\n"]
    assert tree.truncated == ["/ctl"] * 3        # the shell's O_TRUNC arrives as a truncate
    assert run("cat", mnt + "/ctl").stdout == "one two\nthree\nxy\n"
    r = run("bash", "-c", "echo bad > ctl", cwd=mnt)     # dash says only "I/O error"
    assert r.returncode != 0 and "Invalid argument" in r.stderr


def test_truncate_touch_chmod_chown(mnt, tree):
    os.truncate(mnt + "/ctl", 0)
    assert tree.truncated == ["/ctl"]
    assert run("touch", mnt + "/ctl").returncode == 0
    os.chmod(mnt + "/owned", 0o600)
    os.chown(mnt + "/owned", 7, -1)
    st = os.stat(mnt + "/owned")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 7, 5678)


def test_errnos_of_refused_operations(mnt):
    assert errno_of(os.stat, mnt + "/missing") == errno.ENOENT
    assert "No such file or directory" in run("cat", mnt + "/missing").stderr
    assert errno_of(open, mnt + "/static", "w") == errno.EACCES     # from the tree
    assert errno_of(os.rename, mnt + "/static", mnt + "/moved") == errno.EPERM
    assert errno_of(open, mnt + "/new", "w") == errno.EACCES        # vfs_create without ->create
    assert errno_of(os.unlink, mnt + "/static") == errno.EPERM
    assert errno_of(os.symlink, "static", mnt + "/link") == errno.EPERM
    assert errno_of(os.link, mnt + "/static", mnt + "/hard") == errno.EPERM
    assert errno_of(os.mkfifo, mnt + "/fifo") == errno.EPERM
    assert errno_of(os.mkdir, mnt + "/top") == errno.EPERM          # from the tree


def test_mkdir_rmdir_and_rename_of_directories(mnt, tree):
    os.mkdir(mnt + "/cg/app", 0o755)
    assert os.listdir(mnt + "/cg") == ["app"]
    assert os.path.isdir(mnt + "/cg/app")
    assert errno_of(os.mkdir, mnt + "/cg/app") == errno.EEXIST
    assert errno_of(os.rename, mnt + "/cg/app", mnt + "/cg/web") == errno.EPERM
    assert errno_of(os.rmdir, mnt + "/cg") == errno.EBUSY
    os.rmdir(mnt + "/cg/app")
    assert not os.path.exists(mnt + "/cg/app")       # negative entries are not cached
    assert errno_of(os.rmdir, mnt + "/static") == errno.ENOTDIR


def test_statfs(mnt):
    st = os.statvfs(mnt)
    assert (st.f_bsize, st.f_blocks, st.f_files, st.f_namemax) == (4096, 0, 0, 255)


def test_tree_exception_is_eio_and_the_fixture_detects_it(mnt, fuse_log):
    from conftest import LogWatch
    r = run("cat", mnt + "/boom")
    assert r.returncode != 0 and "Input/output error" in r.stderr
    problems = fuse_log.pop()         # taken here, so this test itself passes
    assert len(problems) == 1
    assert "ERROR pseudofs" in problems[0] and "Traceback" in problems[0]
    assert "RuntimeError: boom" in problems[0]
    watch = LogWatch()                # the teardown check fails on exactly such a log
    watch.problems = problems
    with pytest.raises(pytest.fail.Exception, match="RuntimeError: boom"):
        watch.check()


def test_the_watch_catches_warnings_and_thread_exceptions(fuse_log):
    import logging
    logging.getLogger("fuse").warning("libfuse said something")
    t = threading.Thread(target=lambda: 1 / 0)
    t.start()
    t.join()
    problems = fuse_log.pop()
    assert "libfuse said something" in problems[0]
    assert "ZeroDivisionError" in problems[1]


# --- the daemon: run in a child process, as `pseudofs mount` does ------------------------------

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{repo!r}, {tests!r}]
    from pseudofs.errors import ConfigError
    from pseudofs.fs import daemon
    from test_fuseops import DictTree
    mnt, how, pidfile, logfile = sys.argv[1:5]
    def factory():
        if how == "bad":
            raise ConfigError(["c.yaml: kernel.page_size: not a power of two",
                               "c.yaml: topology.nodes: empty"])
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        return DictTree()
    sys.exit(daemon.mount(factory, mnt, log_file=logfile))
""")


@pytest.fixture
def spawn(tmp_path):
    script = tmp_path / "mount.py"
    script.write_text(SCRIPT.format(repo=REPO, tests=TESTS))
    mnt, pidfile, logfile = tmp_path / "dmnt", tmp_path / "pid", tmp_path / "log"
    mnt.mkdir()

    def spawn(how="ok"):
        r = run(sys.executable, str(script), str(mnt), how, str(pidfile), str(logfile))
        pid = int(pidfile.read_text()) if r.returncode == 0 else None
        return r, pid
    spawn.mnt, spawn.log = str(mnt), logfile
    yield spawn
    if daemon.mounted_fstype(str(mnt)):
        run("fusermount", "-uz", str(mnt))


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_daemon_mounts_answers_and_umounts(spawn, capsys):
    r, pid = spawn()
    assert (r.returncode, r.stderr) == (0, "")
    assert os.path.ismount(spawn.mnt) and not gone(pid)
    assert run("cat", spawn.mnt + "/static").stdout == "hello\n"
    assert spawn("ok")[0].stderr.startswith("pseudofs: ")      # busy: mounted already
    assert daemon.umount(spawn.mnt) == 0
    assert daemon.mounted_fstype(spawn.mnt) is None
    wait_until(lambda: gone(pid))
    log = spawn.log.read_text()
    assert "mounted" in log and "ERROR" not in log and "Traceback" not in log
    assert daemon.umount(spawn.mnt) == 1
    assert "is not mounted" in capsys.readouterr().err


def test_daemon_unmounts_on_sigterm(spawn):
    r, pid = spawn()
    assert r.returncode == 0, r.stderr
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: daemon.mounted_fstype(spawn.mnt) is None)
    wait_until(lambda: gone(pid))


def test_killed_daemon_leaves_a_stale_mount_that_is_recovered(spawn, capsys):
    r, pid = spawn()
    assert r.returncode == 0, r.stderr
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid))
    assert errno_of(os.stat, spawn.mnt) in (errno.ENOTCONN, errno.ECONNABORTED)
    r, pid = spawn()                                   # mounting over it recovers it
    assert r.returncode == 0 and "stale mount" in r.stderr
    assert run("cat", spawn.mnt + "/static").stdout == "hello\n"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid))
    assert daemon.umount(spawn.mnt) == 0               # and so does umount
    assert "stale mount" in capsys.readouterr().err
    assert daemon.mounted_fstype(spawn.mnt) is None and os.listdir(spawn.mnt) == []


def test_daemon_reports_a_config_error_in_one_line(spawn):
    r, pid = spawn("bad")
    assert r.returncode == 1 and pid is None
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert "kernel.page_size: not a power of two" in r.stderr
    assert "topology.nodes: empty" in r.stderr
    assert daemon.mounted_fstype(spawn.mnt) is None
