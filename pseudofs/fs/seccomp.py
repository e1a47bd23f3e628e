"""seccomp user notification (seccomp(2), seccomp_unotify(2)) through ctypes: the classic-BPF
filter that sends a few system calls of x86-64 to a supervisor, the listener it returns and the
ioctls that answer on it. Constants and layouts are <linux/seccomp.h>, <linux/filter.h> and
<linux/audit.h>; the kernel side is kernel/seccomp.c.

Stdlib only: `pseudofs exec` may run under a system python without the project's venv.
"""

import ctypes
import ctypes.util
import errno
import fcntl
import os
import struct

# <asm/unistd_64.h>
NR_OPEN, NR_UNAME, NR_STATFS, NR_FSTATFS, NR_OPENAT, NR_OPENAT2 = 2, 63, 137, 138, 257, 437
NR_SECCOMP = 317
X32_SYSCALL_BIT = 0x40000000
AUDIT_ARCH_X86_64 = 62 | 0x80000000 | 0x40000000     # EM_X86_64 | __AUDIT_ARCH_64BIT | _LE

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_USER_NOTIF = 0x7fc00000
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SEND = 1 << 1

# struct seccomp_notif {u64 id; u32 pid; u32 flags; struct seccomp_data {int nr; u32 arch;
# u64 instruction_pointer; u64 args[6]}}: 80 bytes
NOTIF = struct.Struct("=QIIiIQ6Q")
RESP = struct.Struct("=QqiI")          # seccomp_notif_resp: id, val, error, flags
ADDFD = struct.Struct("=QIIII")        # seccomp_notif_addfd: id, flags, srcfd, newfd, newfd_flags


def _ioc(direction: int, nr: int, size: int) -> int:
    """_IOC() of <asm-generic/ioctl.h> with SECCOMP_IOC_MAGIC '!'."""
    return (direction << 30) | (size << 16) | (ord("!") << 8) | nr


_W, _R = 1, 2
IOCTL_RECV = _ioc(_W | _R, 0, NOTIF.size)
IOCTL_SEND = _ioc(_W | _R, 1, RESP.size)
IOCTL_ID_VALID = _ioc(_W, 2, 8)
IOCTL_ADDFD = _ioc(_W, 3, ADDFD.size)
IOCTL_SET_FLAGS = _ioc(_W, 4, 8)
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1

# classic BPF (<linux/bpf_common.h>)
_LD_W_ABS = 0x00 | 0x00 | 0x20
_JEQ_K = 0x05 | 0x10 | 0x00
_JGE_K = 0x05 | 0x30 | 0x00
_RET_K = 0x06 | 0x00


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def supported_here() -> bool:
    """The filter speaks x86-64's system call numbers only."""
    return os.uname().machine == "x86_64"


def trapped_calls(uname: bool) -> tuple:
    calls = (NR_STATFS, NR_FSTATFS, NR_OPEN, NR_OPENAT, NR_OPENAT2)
    return calls + ((NR_UNAME,) if uname else ())


def program(calls) -> list:
    """arch != x86-64 (i386 through int 0x80) or an x32 call: allowed untouched; one of `calls`:
    to the supervisor; anything else: allowed (seccomp_data: nr at 0, arch at 4)."""
    n = len(calls)
    prog = [(_LD_W_ABS, 0, 0, 4),
            (_JEQ_K, 0, n + 2, AUDIT_ARCH_X86_64),          # other arch -> ALLOW
            (_LD_W_ABS, 0, 0, 0),
            (_JGE_K, n, 0, X32_SYSCALL_BIT)]                # x32 -> ALLOW
    for i, nr in enumerate(calls):
        prog.append((_JEQ_K, n - i, 0, nr))                 # -> NOTIF
    prog += [(_RET_K, 0, 0, SECCOMP_RET_ALLOW), (_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF)]
    return prog


def install(calls) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER): the listener's descriptor (close-on-exec,
    init_listener() in kernel/seccomp.c). No no_new_privs is needed: exec installs it after
    making its namespaces, which took CAP_SYS_ADMIN in the caller's user namespace or made a
    new one where it has it (seccomp_prepare_filter() asks ns_capable(CAP_SYS_ADMIN))."""
    insns = program(calls)
    arr = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
    prog = SockFprog(len(insns), arr)
    fd = _libc.syscall(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                       ctypes.byref(prog))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


def sync_wake_up(fd: int) -> bool:
    """Linux 6.6: the woken supervisor runs where the caller waits, and the caller where the
    supervisor answered (seccomp_notify_set_flags(), WF_CURRENT_CPU wake-ups): a shorter round
    trip. Older kernels refuse (EINVAL or ENOTTY), and nothing changes."""
    try:
        fcntl.ioctl(fd, IOCTL_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)   # by value
        return True
    except OSError:
        return False


class Notification:
    __slots__ = ("id", "pid", "nr", "args")

    def __init__(self, raw: bytes):
        f = NOTIF.unpack(raw)
        self.id, self.pid, self.nr, self.args = f[0], f[1], f[3], f[6:12]


def recv(fd: int) -> Notification:
    """One pending notification; OSError(ENOENT) when its caller went away meanwhile. The buffer
    must be zeroed (seccomp_notify_recv() checks)."""
    buf = bytearray(NOTIF.size)
    fcntl.ioctl(fd, IOCTL_RECV, buf, True)
    return Notification(bytes(buf))


def send(fd: int, nid: int, val: int = 0, error: int = 0, cont: bool = False) -> bool:
    """Answer: `val` (error 0), `-error`, or let the call run (cont). False when the caller is
    gone (ENOENT: killed meanwhile; the kernel already ended its call)."""
    try:
        fcntl.ioctl(fd, IOCTL_SEND, RESP.pack(nid, val, -error if error else 0,
                                              SECCOMP_USER_NOTIF_FLAG_CONTINUE if cont else 0))
        return True
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINPROGRESS):
            return False
        raise


def id_valid(fd: int, nid: int) -> bool:
    """The caller is still blocked in this very call (so its pid was not reused)."""
    try:
        fcntl.ioctl(fd, IOCTL_ID_VALID, struct.pack("=Q", nid))
        return True
    except OSError:
        return False


_addfd_send = [True]        # SECCOMP_ADDFD_FLAG_SEND: Linux 5.14 and later


def send_fd(fd: int, nid: int, local_fd: int, cloexec: bool) -> bool:
    """Install `local_fd` in the caller and make it the call's result (seccomp_notify_addfd())."""
    flags = os.O_CLOEXEC if cloexec else 0
    if _addfd_send[0]:
        try:
            fcntl.ioctl(fd, IOCTL_ADDFD, ADDFD.pack(nid, SECCOMP_ADDFD_FLAG_SEND, local_fd, 0,
                                                    flags))
            return True
        except OSError as e:
            if e.errno != errno.EINVAL:
                return False
            _addfd_send[0] = False
    try:
        # a mutable buffer: ioctl() then returns the call's result (the caller's fd number),
        # where with bytes it would return a copy of the buffer
        remote = fcntl.ioctl(fd, IOCTL_ADDFD, bytearray(ADDFD.pack(nid, 0, local_fd, 0, flags)),
                             True)
    except OSError:
        return False
    return send(fd, nid, val=remote)


_readv = _libc.process_vm_readv
_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                   ctypes.c_ulong, ctypes.c_ulong]
_readv.restype = ctypes.c_ssize_t
_PAGE = os.sysconf("SC_PAGE_SIZE")
_buf = ctypes.create_string_buffer(4097)
_local, _remote = IoVec(ctypes.cast(_buf, ctypes.c_void_p), 0), IoVec(0, 0)
_plocal, _premote = ctypes.addressof(_local), ctypes.addressof(_remote)


def read_string(pid: int, addr: int, limit: int = 4096):
    """The NUL-terminated string at `addr` in `pid` (PATH_MAX bytes at most), or None when it
    cannot be read. Reads up to the end of the page first, as an unmapped next page would fail
    the whole read. (Every open CMD makes passes here: kept short.)"""
    out = b""
    while len(out) < limit:
        n = min(_PAGE - (addr % _PAGE), limit - len(out))
        _local.len = _remote.len = n
        _remote.base = addr
        got = _readv(pid, _plocal, 1, _premote, 1, 0)
        if got <= 0:
            return None
        _buf[got] = b"\0"
        chunk = ctypes.string_at(_buf)
        if len(chunk) < got:
            return out + chunk
        out += chunk
        addr += got
    return None                         # longer than PATH_MAX: ENAMETOOLONG, the kernel's


def read_bytes(pid: int, addr: int, size: int):
    """`size` bytes at `addr` in `pid`, or None."""
    _local.len = _remote.len = size
    _remote.base = addr
    got = _readv(pid, _plocal, 1, _premote, 1, 0)
    return _buf.raw[:size] if got == size else None
