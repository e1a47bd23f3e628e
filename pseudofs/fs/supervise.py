"""A `pseudofs mount` daemon seen from another process: start it, wait until its mount answers,
stop it for sure, and read its log for trouble. The pieces `pseudofs.testing` is built of, public
so that other harnesses (the project's own test fixtures) can use them one by one.

No fusepy here: a machine without libfuse can import this module.
"""

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from typing import List, Optional

from pseudofs.fs import daemon

MOUNT_TIMEOUT = 10.0     # seconds until a mount must answer
EXIT_TIMEOUT = 10.0      # seconds for a daemon to exit once unmounted
GRACE = 1.0              # ... before a lazily detached mount's daemon is told to go

# Runs this very pseudofs (the one imported here, installed or from a checkout) with the calling
# interpreter, without touching the environment that `pseudofs exec` hands on to CMD.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = ("import sys; sys.path.insert(0, %r); from pseudofs.cli import main; "
         "sys.exit(main(sys.argv[1:]))" % _ROOT)


def pseudofs_argv(*args) -> List[str]:
    """The argv that runs `pseudofs ARGS...` (this package, this interpreter)."""
    return [sys.executable, "-c", _BOOT, *map(str, args)]


class MountError(RuntimeError):
    """A mount could not be made, or not be stopped cleanly; the message says why."""


answers = daemon.answers


def wait_mounted(path: str, timeout: float = MOUNT_TIMEOUT) -> None:
    """Return once the mount at `path` answers; MountError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not answers(path, deadline - time.monotonic()):
        if time.monotonic() > deadline:
            raise MountError("%s does not answer after %g s" % (path, timeout))
        time.sleep(0.02)


def start(mountpoint: str, log_file: str, config: Optional[str] = None,
          state: Optional[str] = None, timeout: float = MOUNT_TIMEOUT) -> int:
    """`pseudofs mount MOUNTPOINT [-c CONFIG] [--state STATE] --log-file LOG`; the daemon's pid
    (read from LOG), once the mount answers.
    Raises ConfigError for a refused configuration (exit 2), MountError otherwise."""
    from pseudofs.errors import ConfigError
    # absolute: the daemon reads them after its chdir("/")
    args = ["mount", mountpoint, "--log-file", os.path.abspath(log_file)]
    if config is not None:
        args += ["-c", os.path.abspath(config)]
    if state is not None:
        args += ["--state", os.path.abspath(state)]
    try:
        r = subprocess.run(pseudofs_argv(*args), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        raise MountError("pseudofs mount %s did not return" % mountpoint) from None
    if r.returncode == 2:
        raise ConfigError(r.stderr.strip().splitlines())
    if r.returncode != 0:
        raise MountError(r.stderr.strip() or "pseudofs mount failed (status %d)" % r.returncode)
    pid = daemon_pid(log_file, mountpoint)
    try:
        wait_mounted(mountpoint, timeout)
        if pid is None:
            raise MountError("the daemon of %s did not log its pid" % mountpoint)
    except MountError:
        stop(mountpoint, pid)
        raise
    return pid


def daemon_pid(log_file: str, mountpoint: str) -> Optional[int]:
    """The pid the daemon logged when it mounted `mountpoint` (the last such line), or None."""
    try:
        with open(log_file) as f:
            text = f.read()
    except OSError:
        return None
    target = os.path.realpath(mountpoint)
    pids = [int(pid) for mnt, pid in re.findall(r" INFO mounted (.*) \(pid (\d+)\)$", text, re.M)
            if os.path.realpath(mnt) == target]
    return pids[-1] if pids else None


def gone(pid: int) -> bool:
    """Has process `pid` exited (a zombie counts: it runs no more)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _abort_connection(dev: Optional[int]) -> None:
    """Abort the FUSE connection (fusectl), which ends the loop of a lazily detached mount
    that an open file keeps alive."""
    abort = "/sys/fs/fuse/connections/%d/abort" % os.minor(dev) if dev is not None else ""
    if abort and os.path.exists(abort):
        with contextlib.suppress(OSError), open(abort, "w") as f:
            f.write("1")


def stop(mountpoint: str, pid: Optional[int] = None, dev: Optional[int] = None,
         timeout: float = EXIT_TIMEOUT) -> List[str]:
    """Unmount `mountpoint` and make sure daemon `pid` is gone: `pseudofs umount` (fusermount -u,
    a lazy detach if busy, a stale mount cleared), then wait for the daemon; if it stays (a file
    still open keeps a lazily detached mount alive) its connection is aborted (fusectl, with
    the mount's st_dev `dev`) and it gets SIGTERM; one that still stays is killed. Returns the
    problems (text); a daemon that was already gone (killed) is none."""
    problems = []
    if daemon.mounted_fstype(mountpoint) == daemon.FSTYPE:
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            status = daemon.umount(mountpoint)
        if status and daemon.mounted_fstype(mountpoint) == daemon.FSTYPE:
            problems.append("cannot unmount %s: %s" % (mountpoint, said.getvalue().strip()))
    if pid is None or _wait_gone(pid, GRACE):
        return problems
    # A file still open keeps a lazily detached mount, and its daemon, alive: abort the
    # connection (fusectl, if mounted) or SIGTERM the daemon (libfuse leaves its loop on it).
    _abort_connection(dev)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        problems.append("the daemon (pid %d) of %s did not exit within %g s of SIGTERM; killed"
                        % (pid, mountpoint, timeout))
    return problems


def log_problems(log_file: str) -> List[str]:
    """What in a daemon's log should fail a test: ERROR lines and tracebacks (its tail)."""
    try:
        with open(log_file, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    if "Traceback" in text or " ERROR " in text:
        return ["the daemon logged an error in %s:\n%s" % (log_file, text[-4000:])]
    return []
