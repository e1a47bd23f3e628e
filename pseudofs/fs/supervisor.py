"""The supervisor of `pseudofs exec`: answers the system calls the seccomp filter sends it.

- statfs/fstatfs on a bound path: the struct statfs of the filesystem the path stands for
  (cgroup2, proc, sysfs, debugfs: fskind.py), written into the caller's buffer.
- open/openat/openat2 of a mount table (/proc/PID/mountinfo, /proc/PID/mounts, /proc/mounts,
  /etc/mtab) or of /proc/PID/cgroup, for a process of this mount namespace: a read-only
  descriptor of a memfd holding the rewritten text (mounttable.py; the model's cgroup from the
  mount's own proc/PID/cgroup), installed with SECCOMP_IOCTL_NOTIF_ADDFD.
- uname, only trapped when the mount has proc/sys/kernel/osrelease: that release.
Everything else continues untouched (SECCOMP_USER_NOTIF_FLAG_CONTINUE). A call the supervisor
cannot decode, of a caller that vanished, or that fails here in any way is continued: the kernel
then answers it as it would have.

The supervisor shares CMD's mount namespace, so paths resolve alike; it resolves them from the
caller's root, cwd or descriptor (/proc/PID/root, cwd, fd/N), through symlinks. Memory read from
the caller counts only once SECCOMP_IOCTL_NOTIF_ID_VALID confirms the caller is still waiting
in that call (seccomp_unotify(2)); its buffer is written through /proc/PID/mem opened before
that check. Stdlib only.
"""

import ctypes
import errno
import os
import re
import select
import struct

from pseudofs.fs import fskind, mounttable, seccomp
from pseudofs.fs.host import ProcHost

AT_FDCWD = -100
RESOLVE_IN_ROOT = 0x10
OPEN_HOW = struct.Struct("=QQQ")
_NOT_ANSWERED = (os.O_PATH | os.O_DIRECTORY | os.O_CREAT | os.O_WRONLY | os.O_RDWR)
# names of the files answered here, checked on the bare string first: every other open
# continues at once (open is the hot path)
_NAMES = {b"mountinfo", b"mounts", b"cgroup", b"mtab"}
_TABLE = re.compile(r"^/proc/(\d+)(?:/task/(\d+))?/(mountinfo|mounts|cgroup)$")
_NR_STATX, _STATX_SIZE, _STATX_MNT_ID = 332, 0x100, 0x1000      # <linux/stat.h>
_AT_EMPTY_PATH, _AT_STATX_DONT_SYNC = 0x1000, 0x4000
_UTS = 65                               # __NEW_UTS_LEN + 1: struct new_utsname's fields

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _raw_statfs(path: str):
    buf = ctypes.create_string_buffer(fskind.STATFS.size)
    if _libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return fskind.STATFS.unpack(buf.raw)


def _openat2(dirfd: int, path: bytes, flags: int, resolve: int) -> int:
    how = ctypes.create_string_buffer(OPEN_HOW.pack(flags, 0, resolve), OPEN_HOW.size)
    fd = _libc.syscall(seccomp.NR_OPENAT2, dirfd, path, how, OPEN_HOW.size)
    if fd >= 0:
        return fd
    e = ctypes.get_errno()
    if e != errno.ENOSYS:
        raise OSError(e, os.strerror(e))
    if dirfd == AT_FDCWD:
        return os.open(path, flags)
    return os.open(path.lstrip(b"/") or b".", flags, dir_fd=dirfd)    # before Linux 5.6


class Supervisor:
    def __init__(self, listener: int, mnt: str, bound, uname_release=None, uname_version=None):
        self.fd, self.mnt, self.bound = listener, mnt, bound
        seccomp.sync_wake_up(listener)
        self.me = os.getpid()
        root = os.stat("/")
        self.root = (root.st_dev, root.st_ino)
        self.mntns = os.stat("/proc/self/ns/mnt").st_ino
        self.utsns = os.stat("/proc/self/ns/uts").st_ino
        self.dev = os.stat(mnt).st_dev
        self.majmin = "%d:%d" % (os.major(self.dev), os.minor(self.dev))
        self.paths = {b.path for b in bound}
        self.mounts = {}
        self._learn("/proc/self/mountinfo")
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.release, self.version = uname_release, uname_version
        fsid = fskind.encode_fsid(self.dev)
        # proc and sysfs binds take the fsid of the real /proc and /sys around them
        real = {fskind.PROC: _raw_statfs("/proc"), fskind.SYSFS: _raw_statfs("/sys")}
        self.fsid = {k: (r[7], r[8]) if r and r[0] == fskind.MAGIC[k] else fsid
                     for k, r in real.items()}
        self.fsid.setdefault(fskind.CGROUP2, fsid)
        self.fsid.setdefault(fskind.DEBUGFS, fsid)
        # f_flags: the bind's mount flags (calculate_f_flags() in fs/statfs.c), read once
        self.flags = {}
        for b in bound:
            r = _raw_statfs(b.path)
            self.flags[b.path] = r[11] if r else 0x20       # ST_VALID
        self.handlers = {seccomp.NR_STATFS: self._statfs, seccomp.NR_FSTATFS: self._fstatfs,
                         seccomp.NR_OPEN: self._open, seccomp.NR_OPENAT: self._openat,
                         seccomp.NR_OPENAT2: self._openat2, seccomp.NR_UNAME: self._uname}

    @classmethod
    def passthrough(cls, listener: int) -> "Supervisor":
        """One that continues every call: CMD runs as without a filter, nothing waits."""
        sup = cls.__new__(cls)
        sup.fd, sup.handlers = listener, {}
        return sup

    # ---- the loop -------------------------------------------------------------------------

    def serve(self, child) -> None:
        """Until no task uses the filter any more (the listener reports POLLHUP:
        seccomp_notify_poll() once the filter has no users), forwarding signals meanwhile."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(child.sigfd, select.POLLIN)
        while True:
            for fd, ev in poller.poll():
                if fd == child.sigfd:
                    child.on_signals()
                elif ev & select.POLLIN:
                    self.handle_one()
                elif ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    return

    def handle_one(self) -> None:
        try:
            n = seccomp.recv(self.fd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EINTR):      # its caller went away meanwhile
                return
            raise
        answered = False
        try:
            handler = self.handlers.get(n.nr)
            answered = handler is not None and handler(n)
        except Exception:           # whatever went wrong here, the call must not stay blocked
            answered = False
        if not answered:
            try:
                seccomp.send(self.fd, n.id, cont=True)
            except OSError:
                pass                # refused: the kernel still ends the call (ENOSYS at worst)

    # ---- resolving the caller's paths -------------------------------------------------------

    def _open_path(self, pid: int, dirfd: int, path: bytes, follow: bool) -> int:
        """An O_PATH descriptor here of what `path` names for the caller. /proc/self and
        /proc/thread-self would name the supervisor here: they become the caller's /proc/TID
        (a thread's directory has its fd, cwd, root, mountinfo, ...)."""
        if path.startswith(b"/proc/"):
            head, sep, rest = path[6:].partition(b"/")
            if head in (b"self", b"thread-self"):
                path = b"/proc/%d%s%s" % (pid, sep, rest)
        if path.startswith(b"/"):
            root = os.stat("/proc/%d/root" % pid)
            if (root.st_dev, root.st_ino) == self.root:
                # the caller's root is ours (same namespace): resolve as it would, magic links
                # (/proc/PID/fd/N, cwd) included, which RESOLVE_IN_ROOT refuses
                return _openat2(AT_FDCWD, path, os.O_PATH | os.O_CLOEXEC |
                                (0 if follow else os.O_NOFOLLOW), 0)
            base, resolve = "/proc/%d/root" % pid, RESOLVE_IN_ROOT
        elif dirfd == AT_FDCWD:
            base, resolve = "/proc/%d/cwd" % pid, 0
        else:
            base, resolve = "/proc/%d/fd/%d" % (pid, dirfd), 0
        bfd = os.open(base, os.O_PATH | os.O_CLOEXEC)
        try:
            flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
            return _openat2(bfd, path, flags, resolve)
        finally:
            os.close(bfd)

    def _bound_kind(self, fd: int, pid: int):
        """(kind, bound path) when the descriptor lies on one of the binds, else None. Told by
        its mount (statx's stx_mnt_id, Linux 5.8; AT_STATX_DONT_SYNC asks FUSE nothing):
        the binds of this namespace are known, those of another one (an exec inside exec) are
        learnt from the caller's mountinfo."""
        buf = ctypes.create_string_buffer(_STATX_SIZE)
        if _libc.syscall(_NR_STATX, fd, b"", _AT_EMPTY_PATH | _AT_STATX_DONT_SYNC,
                         _STATX_MNT_ID, buf) != 0:
            return None
        mask, = struct.unpack_from("=I", buf.raw, 0)
        major, minor, mnt_id = struct.unpack_from("=IIQ", buf.raw, 0x88)
        if (major, minor) != (os.major(self.dev), os.minor(self.dev)):
            return None
        if not mask & _STATX_MNT_ID:
            return None
        if mnt_id not in self.mounts:
            self._learn("/proc/%d/mountinfo" % pid)
            self.mounts.setdefault(mnt_id, None)
        b = self.mounts[mnt_id]
        return (b.kind, b.path) if b is not None else None

    def _learn(self, mountinfo: str) -> None:
        """mount id -> Bound for the binds a mountinfo shows."""
        by_path = {b.path: b for b in self.bound}
        for line in _read(mountinfo).splitlines():
            f = line.split(" ")
            if len(f) > 4 and f[2] == self.majmin and f[4] in by_path:
                self.mounts[int(f[0])] = by_path[f[4]]

    def _write(self, n, addr: int, data: bytes) -> bool:
        """Write into the caller's memory and answer: 0, or EFAULT for a bad buffer."""
        mem = os.open("/proc/%d/mem" % n.pid, os.O_RDWR | os.O_CLOEXEC)
        try:
            if not seccomp.id_valid(self.fd, n.id):
                return True                 # gone: nothing to answer
            try:
                os.pwrite(mem, data, addr)
            except (OSError, OverflowError):
                return seccomp.send(self.fd, n.id, error=errno.EFAULT) or True
        finally:
            os.close(mem)
        seccomp.send(self.fd, n.id, val=0)
        return True

    # ---- statfs -----------------------------------------------------------------------------

    def _answer_statfs(self, n, fd: int, buf: int) -> bool:
        try:
            found = self._bound_kind(fd, n.pid)
        finally:
            os.close(fd)
        if found is None:
            return False
        kind, path = found
        return self._write(n, buf, fskind.statfs_bytes(kind, self.page, self.fsid[kind],
                                                       self.flags[path]))

    def _statfs(self, n) -> bool:
        path = seccomp.read_string(n.pid, n.args[0])
        if not path or not seccomp.id_valid(self.fd, n.id):
            return False
        return self._answer_statfs(n, self._open_path(n.pid, AT_FDCWD, path, True), n.args[1])

    def _fstatfs(self, n) -> bool:
        fd = os.open("/proc/%d/fd/%d" % (n.pid, n.args[0] & 0xffffffff),
                     os.O_PATH | os.O_CLOEXEC)
        return self._answer_statfs(n, fd, n.args[1])

    # ---- open of the mount table and the cgroup file -------------------------------------

    def _open(self, n) -> bool:
        return self._open_common(n, AT_FDCWD, n.args[0], n.args[1])

    def _openat(self, n) -> bool:
        return self._open_common(n, fskind.s32(n.args[0]), n.args[1], n.args[2])

    def _openat2(self, n) -> bool:
        if n.args[3] < OPEN_HOW.size:
            return False
        raw = seccomp.read_bytes(n.pid, n.args[2], OPEN_HOW.size)
        if raw is None:
            return False
        flags, _mode, resolve = OPEN_HOW.unpack(raw)
        if resolve:                 # the caller restricts the walk: let the kernel do it
            return False
        return self._open_common(n, fskind.s32(n.args[0]), n.args[1], flags)

    def _open_common(self, n, dirfd: int, addr: int, flags: int) -> bool:
        if flags & _NOT_ANSWERED:
            return False
        path = seccomp.read_string(n.pid, addr)
        if not path or path.rsplit(b"/", 1)[-1] not in _NAMES:
            return False
        if not seccomp.id_valid(self.fd, n.id):
            return False
        text = self._table(n.pid, dirfd, path, not flags & os.O_NOFOLLOW)
        if text is None:
            return False
        mfd = os.memfd_create("pseudofs", os.MFD_CLOEXEC)
        try:
            os.write(mfd, text)
            ro = os.open("/proc/self/fd/%d" % mfd, os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(mfd)
        try:
            return seccomp.send_fd(self.fd, n.id, ro, bool(flags & os.O_CLOEXEC))
        finally:
            os.close(ro)

    def _table(self, pid: int, dirfd: int, path: bytes, follow: bool):
        fd = self._open_path(pid, dirfd, path, follow)
        try:
            where = os.readlink("/proc/self/fd/%d" % fd)
        finally:
            os.close(fd)
        m = _TABLE.match(where)
        if m is None:
            return None
        p = int(m.group(1))
        if p == self.me:                # "self" resolved here names the caller
            p = _tgid(pid)
        if p is None or os.stat("/proc/%d/ns/mnt" % p).st_ino != self.mntns:
            return None
        what = m.group(3)
        if what == "cgroup":
            p = _tgid(p)                # the mount knows processes, not threads
            try:
                with open("%s/proc/%d/cgroup" % (self.mnt, p), "rb") as f:
                    return f.read()
            except OSError:
                return None
        for _ in range(5):
            info = _read("/proc/%d/mountinfo" % p)
            if what == "mountinfo":
                return mounttable.mountinfo(info, self.paths, self.majmin).encode(
                    "utf-8", "surrogateescape")
            text = mounttable.mounts(_read("/proc/%d/mounts" % p), info, self.paths,
                                     self.majmin)
            if text is not None:
                return text.encode("utf-8", "surrogateescape")
        return None

    # ---- uname ------------------------------------------------------------------------------

    def _uname(self, n) -> bool:
        if self.release is None:
            return False
        if os.stat("/proc/%d/ns/uts" % n.pid).st_ino != self.utsns:
            return False
        u = os.uname()
        fields = (u.sysname, u.nodename, self.release, self.version or u.version, u.machine,
                  _read("/proc/sys/kernel/domainname").strip())
        data = b"".join(os.fsencode(f)[:_UTS - 1].ljust(_UTS, b"\0") for f in fields)
        return self._write(n, n.args[0], data)


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


_tgid = ProcHost().tgid
