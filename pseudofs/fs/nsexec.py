"""`pseudofs exec MNT -- CMD`: run CMD in a private mount namespace where the model's files are
bound over the real /proc and /sys paths, so tools with hard-coded paths read the model.

The process unshares its own mount namespace, binds the files, then *execs* CMD: CMD's exit status
(or the signal that ended it) is the status of `pseudofs exec` itself, and the caller's namespace
never changes. Without CAP_SYS_ADMIN it tries an unprivileged user namespace (the caller's uid and
gid mapped to themselves, so CMD still runs as the caller); when neither is allowed it says so and
exits with EXIT_FAILED, without a traceback.

Exit status: CMD's own; EXIT_FAILED when `pseudofs exec` itself failed before running CMD (no
mount, no privilege, a bind refused), 126 when CMD cannot be executed, 127 when it is not found
(the shell's conventions, as env(1) and chroot(1) use them).
"""

import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import sys

# (path in the mount == path on the host, is a directory)
BINDS = (("/proc/vmstat", False), ("/proc/meminfo", False), ("/proc/stat", False),
         ("/proc/cpuinfo", False), ("/proc/cgroups", False),
         ("/sys/devices/system/node", True), ("/sys/devices/system/cpu", True),
         ("/sys/fs/cgroup", True))
# Bound when the mount has them: /proc/uptime exists on a live clock only (docs/time.md)
OPTIONAL_BINDS = (("/proc/uptime", False),)

EXIT_FAILED = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

# <sched.h>, <sys/mount.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


class ExecError(Exception):
    """`pseudofs exec` cannot run CMD; the message is for the user."""


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_void_p]
    return libc


def _check_errno(ret: int) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _check_mount(mnt: str, shown: str) -> None:
    try:
        os.stat(mnt)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise ExecError(f"the mount at {shown} does not answer (its daemon is gone); clear "
                            f"it with: pseudofs umount {shown}")
        raise ExecError(f"{shown}: {e.strerror}")
    for path, is_dir in BINDS:
        src = mnt + path
        try:
            ok = os.path.isdir(src) if is_dir else os.path.isfile(src)
        except OSError:
            ok = False
        if not ok:
            raise ExecError(f"{shown} is not a pseudofs mount ({src} is missing); "
                            f"mount it first: pseudofs mount {shown} -c CONFIG")
    for path, is_dir in BINDS:
        if not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            raise ExecError(f"{path} does not exist on this machine, so the model's file "
                            "cannot be bound over it")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _private_namespace(libc) -> str:
    """Move this process into a new mount namespace; returns how ("mount" or "user")."""
    try:
        _check_errno(libc.unshare(CLONE_NEWNS))
        return "mount"
    except OSError as e:
        if e.errno != errno.EPERM:
            raise ExecError(f"cannot create a private mount namespace: {e.strerror}")
    uid, gid = os.geteuid(), os.getegid()
    try:
        _check_errno(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        return "user"
    except OSError:
        raise ExecError(
            "not allowed to create a private mount namespace (it needs CAP_SYS_ADMIN, or "
            "unprivileged user namespaces, which this machine refuses); run it as root, "
            "e.g. sudo pseudofs exec MNT -- CMD") from None


def _bind_all(libc, mnt: str) -> None:
    try:
        # Nothing mounted from here on may propagate back to the caller's namespace.
        _check_errno(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None))
    except OSError as e:
        raise ExecError(f"cannot make / private in the new mount namespace: {e.strerror}")
    optional = [(p, d) for p, d in OPTIONAL_BINDS if os.path.exists(mnt + p)]
    for path, _ in list(BINDS) + optional:
        src = mnt + path
        try:
            _check_errno(libc.mount(os.fsencode(src), os.fsencode(path), None, MS_BIND, None))
        except OSError as e:
            raise ExecError(f"cannot bind {src} over {path}: {e.strerror}")


def run(mountpoint: str, command) -> int:
    """Returns only on failure (a status); on success this process becomes CMD."""
    command = list(command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("pseudofs exec: no command given (usage: pseudofs exec MNT -- CMD [ARGS...])",
              file=sys.stderr)
        return 2
    mnt = os.path.realpath(mountpoint)
    try:
        _check_mount(mnt, mountpoint)
        if shutil.which(command[0]) is None and not (os.sep in command[0]
                                                    and os.path.exists(command[0])):
            print(f"pseudofs exec: {command[0]}: command not found", file=sys.stderr)
            return EXIT_NOT_FOUND
        libc = _libc()
        _private_namespace(libc)
        _bind_all(libc, mnt)
    except ExecError as e:
        print(f"pseudofs exec: {e}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE (and SIGXFSZ); an ignored signal stays ignored across exec.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"pseudofs exec: {command[0]}: {e.strerror}", file=sys.stderr)
        return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
    return EXIT_FAILED       # not reached
