"""Helpers for tests that run `pseudofs mount` as a real daemon (a separate process), as a user
would: mount, find the daemon's pid, read the whole mount, kill -9, clean up.

`Daemons` (the `daemons` fixture of the tests that use it) remembers every mount and daemon it
started; at teardown it kills what is left, clears the mounts and fails the test if a daemon
log holds an ERROR or a traceback.
"""

import errno
import os
import signal
import subprocess
import sys
import time

from pseudofs.fs import supervise

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pfs(*args, timeout=120) -> subprocess.CompletedProcess:
    """Run the `pseudofs` command line (this checkout) and capture its output."""
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "pseudofs", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


gone = supervise.gone


def wait_until(cond, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def fstype(mnt: str):
    """The fstype mounted at mnt (from mountinfo; never stats a stale mount)."""
    from pseudofs.fs import daemon
    return daemon.mounted_fstype(str(mnt))


def diff(a: dict, b: dict, limit=5) -> str:
    keys = sorted(set(a) | set(b))
    bad = [k for k in keys if a.get(k) != b.get(k)]
    return "; ".join("%s: %r != %r" % (k, a.get(k), b.get(k)) for k in bad[:limit]) + \
        (" (+%d more)" % (len(bad) - limit) if len(bad) > limit else "")


class Daemons:
    """Daemons started as a user would, built on the kit's pieces (pseudofs.fs.supervise, what
    pseudofs.testing.mounted() is made of): the pid from the log, a stop that unmounts and makes
    sure the daemon is gone, the log check."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.mounts = {}           # mountpoint -> the pid of its last daemon
        self.logs = []

    def mount(self, mnt, *args, log=None, expect=0):
        """`pseudofs mount MNT ARGS... --log-file LOG`; returns (CompletedProcess, pid)."""
        mnt = str(mnt)
        if fstype(mnt) is None:                  # a stale mount cannot even be stat()ed
            os.makedirs(mnt, exist_ok=True)
        log = str(log or self.tmp / ("%s.log" % os.path.basename(mnt)))
        self.logs.append(log)
        r = pfs("mount", mnt, *args, "--log-file", log)
        if expect is not None:
            assert r.returncode == expect, r.stderr
        pid = self.pid(log, mnt) if r.returncode == 0 else None
        self.mounts[mnt] = pid or self.mounts.get(mnt)
        return r, pid

    @staticmethod
    def pid(log, mnt):
        pid = supervise.daemon_pid(log, mnt)
        assert pid is not None, "no daemon pid for %s in %s" % (mnt, log)
        return pid

    @staticmethod
    def kill9(pid):
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: supervise.gone(pid), what="pid %d to die" % pid)

    def cleanup(self):
        problems = []
        for mnt, pid in self.mounts.items():
            problems += supervise.stop(mnt, pid)
        for log in self.logs:
            problems += supervise.log_problems(log)
        return problems


STALE = (errno.ENOTCONN, errno.ECONNABORTED)
