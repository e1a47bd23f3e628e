"""The daemon's life: mount (in the foreground or as a forked daemon) and unmount, stale mounts too.

No fusepy here: mounting goes through `pseudofs.fs.fuseops.serve`. Errors reach the user as one
line on stderr (`pseudofs: ...`), never as a traceback; functions return an exit status.
"""

import errno
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

from pseudofs.errors import ConfigError
from pseudofs.fs.tree import Tree

log = logging.getLogger("pseudofs")

FSTYPE = "fuse.pseudofs"
STALE_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)   # a FUSE mount whose daemon is gone


def _err(msg: str) -> None:
    sys.stderr.write("pseudofs: %s\n" % " ".join(msg.split("\n")).strip())
    sys.stderr.flush()


def _abspath(path: str) -> str:
    # realpath of the parent only: lstat of a stale mountpoint itself fails with ENOTCONN.
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _unescape(field: str) -> str:
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def mounted_fstype(mountpoint: str) -> Optional[str]:
    """The fstype of the topmost mount at `mountpoint` (from /proc/self/mountinfo), or None."""
    target, fstype = _abspath(mountpoint), None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) > 4 and _unescape(fields[4]) == target:
                fstype = right.split()[0]
    return fstype


def mount_state(mountpoint: str) -> str:
    """'stale' (daemon gone: ENOTCONN), 'mounted' or 'unmounted'. Other OSErrors propagate."""
    try:
        os.stat(mountpoint)
    except OSError as e:
        if e.errno in STALE_ERRNOS:
            return "stale"
        raise
    return "mounted" if os.path.ismount(mountpoint) else "unmounted"


def _run(cmd) -> str:
    """Run an unmount command; '' on success, else its message."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s: %s" % (cmd[0], e)
    return "" if p.returncode == 0 else (p.stderr.strip() or "%s failed" % " ".join(cmd))


def _lazy_unmount(mnt: str) -> str:
    msg = _run(["fusermount", "-uz", mnt])
    if msg:
        msg2 = _run(["umount", "-l", mnt])
        return "" if not msg2 else "%s; %s" % (msg, msg2)
    return ""


def clear_stale(mountpoint: str) -> bool:
    """Detach a stale mount (daemon killed); tells the user on stderr. True on success."""
    mnt = _abspath(mountpoint)
    try:
        os.stat(mnt)
        why = "not answering"
    except OSError as e:          # ENOTCONN, or ECONNABORTED once the kernel aborted it
        why = e.strerror
    _err("%s: the daemon is gone (%s); clearing the stale mount" % (mountpoint, why))
    msg = _lazy_unmount(mnt)
    if msg:
        _err("cannot clear the stale mount at %s: %s" % (mountpoint, msg))
    return not msg


def umount(mountpoint: str) -> int:
    """fusermount -u, then a lazy detach if busy; also clears a stale mount. Exit status."""
    mnt = _abspath(mountpoint)
    fstype = mounted_fstype(mnt)
    if fstype is None:
        _err("%s is not mounted" % mountpoint)
        return 1
    if fstype != FSTYPE:
        _err("%s is not a pseudofs mount (it is %s)" % (mountpoint, fstype))
        return 1
    try:
        state = mount_state(mnt)
    except OSError as e:
        _err("%s: %s" % (mountpoint, e.strerror))
        return 1
    if state == "stale":
        return 0 if clear_stale(mnt) else 1
    msg = _run(["fusermount", "-u", mnt])
    if msg:
        if mounted_fstype(mnt) != FSTYPE:      # someone else unmounted it meanwhile
            return 0
        _err("%s: %s; detaching it lazily (it goes once its last user closes it)"
             % (mountpoint, msg))
        msg = _lazy_unmount(mnt)
        if msg:
            _err("cannot unmount %s: %s" % (mountpoint, msg))
            return 1
    return 0


def _check_mountpoint(mnt: str, shown: str) -> Optional[str]:
    """Prepare `mnt` for mounting; the reason it cannot be used, or None."""
    try:
        state = mount_state(mnt)
    except OSError as e:
        return "%s: %s" % (shown, e.strerror)
    if state == "stale":
        if not clear_stale(mnt):
            return "%s: a stale mount is in the way" % shown
    elif state == "mounted":
        return "%s is busy: something is mounted there already" % shown
    if not os.path.isdir(mnt):
        return "%s is not a directory" % shown
    if os.listdir(mnt):
        return "%s is not empty" % shown          # as libfuse refuses without -o nonempty
    return None


def _setup_logging(verbose: bool, stream) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s pseudofs[%(process)d] %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _build(tree_factory: Callable[[], Tree]):
    """(tree, None) or (None, one-line reason)."""
    try:
        return tree_factory(), None
    except ConfigError as e:
        return None, "; ".join(e.problems) or "bad configuration"
    except Exception as e:         # the model refused to start: say why, not where
        return None, "cannot build the model: %s: %s" % (type(e).__name__, e)


def mount(tree_factory: Callable[[], Tree], mountpoint: str, foreground: bool = False,
          allow_other: bool = False, verbose: bool = False, log_file: Optional[str] = None,
          entry_timeout: Optional[float] = None, threads: Optional[str] = None,
          timeout: float = 10.0) -> int:
    """Mount the tree `tree_factory()` builds at `mountpoint`. Returns an exit status.

    As a daemon (default): fork; the child does setsid, builds the tree and mounts; this process
    returns 0 once the mount answers, or 1 with the child's error on stderr. With `foreground`,
    serve in this process until unmounted (or SIGINT/SIGTERM). The daemon logs to `log_file`
    (appended) if given, else nowhere; in the foreground to `log_file` or stderr.
    """
    mnt = _abspath(mountpoint)
    log_file = os.path.abspath(log_file) if log_file else None
    reason = _check_mountpoint(mnt, mountpoint)
    if reason:
        _err(reason)
        return 1
    opts = dict(allow_other=allow_other)
    if entry_timeout is not None:
        opts["entry_timeout"] = entry_timeout
    if threads is not None:
        opts["threads"] = threads
    if foreground:
        return _foreground(tree_factory, mnt, mountpoint, verbose, log_file, opts)
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # the daemon
        code = 1
        try:
            os.close(rfd)
            code = _daemon(tree_factory, mnt, wfd, verbose, log_file, opts)
        except BaseException as e:                # a bug: one line for the parent, and the log
            if log.handlers:                      # the log file, never the parent's pipe
                log.error("the daemon failed", exc_info=True)
            sys.stderr.write("internal error: %s: %s\n" % (type(e).__name__, e))
        finally:
            os._exit(code)
    os.close(wfd)
    return _await_mount(pid, rfd, mnt, mountpoint, timeout)


def _foreground(tree_factory, mnt, shown, verbose, log_file, opts) -> int:
    from pseudofs.fs import fuseops     # fusepy only to mount: umount works without libfuse
    try:
        _setup_logging(verbose, open(log_file, "a", buffering=1) if log_file else sys.stderr)
    except OSError as e:
        _err("log file %s: %s" % (log_file, e.strerror))
        return 1
    tree, reason = _build(tree_factory)
    if reason:
        _err("cannot mount %s: %s" % (shown, reason))
        return 1
    try:
        fuseops.serve(tree, mnt, **opts)
    except fuseops.MountFailed as e:
        _err(str(e))
        return 1
    log.info("unmounted %s", mnt)
    return 0


def _daemon(tree_factory, mnt, wfd, verbose, log_file, opts) -> int:
    """The forked child. Until the mount is up its stderr is the pipe the parent reads."""
    os.setsid()
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(wfd, 2)                 # libfuse's messages and ours reach the parent
    os.close(wfd)
    try:
        out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log_file \
            else devnull
    except OSError as e:
        sys.stderr.write("log file %s: %s\n" % (log_file, e.strerror))
        return 1
    _setup_logging(verbose, open(os.dup(out), "a", buffering=1))   # the log, never the pipe
    tree, reason = _build(tree_factory)
    if reason:
        sys.stderr.write(reason + "\n")
        return 1
    from pseudofs.fs import fuseops     # fusepy only to mount: umount works without libfuse

    def mounted() -> None:
        # FUSE_INIT arrived: the mount exists. Point stderr at the log, which closes the last
        # write end of the pipe: the parent sees EOF and checks that the mount answers.
        sys.stderr.flush()
        os.dup2(out, 2)
        log.info("mounted %s (pid %d)", mnt, os.getpid())

    # libfuse installs its SIGINT/SIGTERM/SIGHUP handlers only over SIG_DFL; on them it leaves
    # the loop and unmounts (fuse_teardown -> fuse_unmount: umount2 as root, else fusermount -u).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        fuseops.serve(tree, mnt, on_init=mounted, **opts)
    except fuseops.MountFailed as e:
        sys.stderr.write("%s\n" % e)
        return 1
    log.info("unmounted %s", mnt)
    return 0


def answers(path: str, timeout: float = 1.0) -> bool:
    """Is `path` a mount whose root answers a stat? Asked in a helper thread, so a hung daemon
    cannot hang the caller."""
    result = []

    def probe() -> None:
        try:
            result.append(os.path.ismount(path) and os.stat(path) is not None)
        except OSError:
            result.append(False)
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(max(timeout, 0.1))
    return bool(result and result[0])


def _read_some(rfd: int, chunks: list) -> bool:
    """Read what the pipe holds into chunks; True at EOF."""
    data = os.read(rfd, 65536)
    if data:
        chunks.append(data)
    return not data


def _await_mount(pid: int, rfd: int, mnt: str, shown: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    chunks: list = []
    eof = False
    try:
        while time.monotonic() < deadline:
            if not eof and select.select([rfd], [], [], 0.05)[0]:
                eof = _read_some(rfd, chunks)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:                               # the daemon died before the mount answered
                while not eof:
                    eof = _read_some(rfd, chunks)
                text = b"".join(chunks).decode(errors="replace")
                why = "; ".join(line.strip() for line in text.splitlines() if line.strip())
                _err("cannot mount %s: %s" % (shown, why or "the daemon exited with status %d"
                                               % os.waitstatus_to_exitcode(status)))
                return 1
            if eof:
                if answers(mnt, deadline - time.monotonic()):
                    text = b"".join(chunks).decode(errors="replace")
                    for line in text.splitlines():  # warnings printed before the mount came up
                        if line.strip():
                            _err(line)
                    return 0
                time.sleep(0.05)
    finally:
        os.close(rfd)
    _err("cannot mount %s: no answer within %g s; stopping the daemon" % (shown, timeout))
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    return 1
