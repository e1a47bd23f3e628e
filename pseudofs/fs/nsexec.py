"""`pseudofs exec MNT -- CMD`: run CMD in a private mount namespace where the model's files are
bound over the real /proc and /sys paths, so tools with hard-coded paths read the model.

The process unshares its own mount namespace and binds the files; the caller's namespace never
changes. Without CAP_SYS_ADMIN it tries an unprivileged user namespace (the caller's uid and
gid mapped to themselves, so CMD still runs as the caller); when neither is allowed it says so
and exits with EXIT_FAILED, without a traceback.

Then it forks CMD under a seccomp filter and stays as CMD's parent to answer statfs(2) and the
opens of the mount table as the kernel would for the filesystems the binds stand for
(supervisor.py; docs/exec.md). CMD's exit status (or the signal that ended it) becomes that of
`pseudofs exec`; signals sent to `pseudofs exec` are passed on to CMD. With `--fs-magic fuse`,
or where seccomp user notification is unavailable, `pseudofs exec` execs CMD itself, as before.

Exit status: CMD's own; EXIT_FAILED when `pseudofs exec` itself failed before running CMD (no
mount, no privilege, a bind refused), 126 when CMD cannot be executed, 127 when it is not found
(the shell's conventions, as env(1) and chroot(1) use them).
"""

import ctypes
import ctypes.util
import errno
import os
import shutil
import socket
import sys

from pseudofs.files.table import exec_binds
from pseudofs.fs import childproc, fskind, seccomp, supervisor

# (path in the mount == path on the host, is a directory, optional): the table's `bind` rows
BINDS = tuple(exec_binds())

EXIT_FAILED = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

# <sched.h>, <sys/mount.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x2, 0x4, 0x8, 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 1 << 21
# where a real filesystem is mounted (cgroup2 at /sys/fs/cgroup), the bind takes the flags the
# system mounts it with (systemd: nosuid,nodev,noexec,relatime), so statfs's f_flags and the
# mount table agree with it
MOUNT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME


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


def _check_mount(mnt: str, shown: str) -> list:
    """The paths to bind (every bind row the mount and this machine have); ExecError if the
    mount is not usable."""
    try:
        os.stat(mnt)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise ExecError(f"the mount at {shown} does not answer (its daemon is gone); clear "
                            f"it with: pseudofs umount {shown}")
        raise ExecError(f"{shown}: {e.strerror}")
    binds = []
    for path, is_dir, optional in BINDS:
        src = mnt + path
        try:
            ok = os.path.isdir(src) if is_dir else os.path.isfile(src)
        except OSError:
            ok = False
        here = os.path.isdir(path) if is_dir else os.path.isfile(path)
        if optional and not (ok and here):
            continue                        # e.g. /proc/pressure without CONFIG_PSI
        if not ok:
            raise ExecError(f"{shown} is not a pseudofs mount ({src} is missing); "
                            f"mount it first: pseudofs mount {shown} -c CONFIG")
        if not here:
            raise ExecError(f"{path} does not exist on this machine, so the model's file "
                            "cannot be bound over it")
        binds.append(path)
    return binds


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


def _bind_all(libc, mnt: str, binds) -> None:
    try:
        # Nothing mounted from here on may propagate back to the caller's namespace.
        _check_errno(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None))
    except OSError as e:
        raise ExecError(f"cannot make / private in the new mount namespace: {e.strerror}")
    for path in binds:
        src = mnt + path
        try:
            _check_errno(libc.mount(os.fsencode(src), os.fsencode(path), None, MS_BIND, None))
        except OSError as e:
            raise ExecError(f"cannot bind {src} over {path}: {e.strerror}")
        if path in fskind.MOUNTED_AT:
            libc.mount(None, os.fsencode(path), None, MS_REMOUNT | MS_BIND | MOUNT_FLAGS, None)


def run(mountpoint: str, command, fs_magic: str = "kernel") -> int:
    """On success, the status to exit with (or this process ends with CMD's signal), or,
    without a supervisor, this process becomes CMD; on failure, a status."""
    command = list(command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("pseudofs exec: no command given (usage: pseudofs exec MNT -- CMD [ARGS...])",
              file=sys.stderr)
        return 2
    mnt = os.path.realpath(mountpoint)
    try:
        binds = _check_mount(mnt, mountpoint)
        if shutil.which(command[0]) is None and not (os.sep in command[0]
                                                    and os.path.exists(command[0])):
            print(f"pseudofs exec: {command[0]}: command not found", file=sys.stderr)
            return EXIT_NOT_FOUND
        libc = _libc()
        _private_namespace(libc)
        _bind_all(libc, mnt, binds)
    except ExecError as e:
        print(f"pseudofs exec: {e}", file=sys.stderr)
        return EXIT_FAILED
    if fs_magic != "fuse":
        why = _no_supervisor()
        if why is None:
            return _supervised(mnt, command, binds)
        print(f"pseudofs exec: statfs will say FUSE: {why}", file=sys.stderr)
    return _exec(command)


def _no_supervisor():
    """Why the supervisor cannot run here, or None. It needs SECCOMP_IOCTL_NOTIF_ADDFD (Linux
    5.9) and the listener's POLLHUP once no task is left (5.8)."""
    if not seccomp.supported_here():
        return f"seccomp user notification is only used on x86-64, not {os.uname().machine}"
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < (5, 9):
        return f"seccomp user notification with ADDFD needs Linux 5.9 (this is {major}.{minor})"
    return None


def _exec(command) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    childproc.default_signals()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"pseudofs exec: {command[0]}: {e.strerror}", file=sys.stderr)
        return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
    return EXIT_FAILED       # not reached


def _unavailable(err: int) -> str:
    if err == errno.EBUSY:
        # one listener per filter tree: has_duplicate_listener() in kernel/seccomp.c
        return ("no supervisor of its own: one already watches this process (an exec inside "
                "exec?), and it answers")
    return f"statfs will say FUSE: seccomp user notification is unavailable: {os.strerror(err)}"


def _uname_release(mnt: str):
    """(release, version) for uname(2) when the mount models the kernel's release, else
    (None, None) (uname is then not trapped). The version is what /proc/version shows after the compiler:
    linux_proc_banner in init/version.c ends with utsname()->version."""
    try:
        with open(mnt + "/proc/sys/kernel/osrelease") as f:
            release = f.read().strip()
    except OSError:
        return None, None
    version = None
    try:
        with open(mnt + "/proc/version") as f:
            banner = f.read().strip()
        at = banner.find(") #")
        version = banner[at + 2:] if at >= 0 else None
    except OSError:
        pass
    return release, version


def _supervised(mnt: str, command, binds) -> int:
    release, version = _uname_release(mnt)
    calls = seccomp.trapped_calls(uname=release is not None)
    childproc.block()
    childproc.become_subreaper()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = EXIT_FAILED
        try:
            ours.close()
            childproc.child_setup(parent)
            try:
                fd = seccomp.install(calls)
                socket.send_fds(theirs, [b"ok"], [fd])
                os.close(fd)
            except OSError as e:
                theirs.send(b"%d" % e.errno)
            theirs.close()
            status = _exec(command)          # returns only when CMD could not be executed
        finally:
            os._exit(status)
    theirs.close()
    child = childproc.Child(pid, childproc.signalfd())
    msg, fds, _, _ = socket.recv_fds(ours, 256, 1)
    ours.close()
    # CMD and its descendants hold stdin and stdout: a reader of CMD's output sees its end, and
    # a writer into CMD its SIGPIPE, as without `pseudofs exec` in between
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    if fds:
        try:
            made = [(path, is_dir) for path, is_dir, _ in BINDS if path in binds]
            sup = supervisor.Supervisor(fds[0], mnt, fskind.bound(made), release, version)
        except OSError as e:            # e.g. the mount's daemon went away meanwhile
            print(f"pseudofs exec: statfs will say FUSE: {e}", file=sys.stderr)
            sup = supervisor.Supervisor.passthrough(fds[0])
        sup.serve(child)
        os.close(fds[0])
    elif msg:
        print(f"pseudofs exec: {_unavailable(int(msg))}", file=sys.stderr)
    while not child.done:
        child.wait()
    return childproc.exit_like(child.status)
