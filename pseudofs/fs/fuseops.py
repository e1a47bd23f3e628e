"""The fusepy adapter: the only module of pseudofs that imports fusepy.

`FuseOps` turns fusepy callbacks into calls on a `Tree` (pseudofs/fs/tree.py) and exceptions into
errnos; it knows no path and no file kind. `serve()` mounts a tree and blocks until it is unmounted.

How fusepy 3.0.1 registers callbacks (fuse.py, FUSE.__init__): it walks `fuse_operations._fields_`
and registers a C callback for each name where `getattr(operations, name, None)` is not None
(`ftruncate` and `fgetattr` follow `truncate` and `getattr`); every registered callback then calls
`operations(name, *args)`. `fuse.Operations` defines every operation (flush, fsync, access, ...),
so subclassing it would register them all. `FuseOps` does not subclass it and defines only what
we implement: for the rest libfuse answers ENOSYS, and the kernel remembers that for the
connection (fc->no_flush, no_fsync, no_xattr, no_access ...) and stops sending them.
Never give this class an attribute named like a fuse operation (e.g. `lock`, `poll`, `access`):
fusepy would register it. `registered_operations()` shows what fusepy sees.

With `raw_fi=True` fusepy passes the `fuse_file_info` structure itself to open, read, write,
release, create, ftruncate and fgetattr (but not to readdir/opendir), so `open` can set
`direct_io` and keep our handle number in `fh`.
"""

import codecs
import ctypes
import errno
import itertools
import logging
import stat
import time
from typing import Callable, Dict, List, Optional

from fuse import FUSE, FuseOSError, c_stat, fuse_exit, fuse_get_context, fuse_operations

from pseudofs.errors import ModelError
from pseudofs.fs import faultops
from pseudofs.fs.tree import Attr, Caller, OpenFile, Tree, render

log = logging.getLogger("pseudofs")

# What simple_statfs() reports for sysfs, cgroupfs and debugfs: page-size blocks, no space, no
# inodes, NAME_MAX names. (st_fsid/f_type stay FUSE's: README, Known limits.)
STATFS = {
    "f_bsize": 4096, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0, "f_bavail": 0,
    "f_files": 0, "f_ffree": 0, "f_favail": 0, "f_namemax": 255,
}


# Positive dentries may be cached (docs/ARCHITECTURE.md, Caches): with 1 s, an open+read+close
# of sys/fs/cgroup/memory.stat costs 1 LOOKUP round trip instead of 4 (bench/README.md has the
# measured difference). Attributes and negative entries are never cached, so stat and test -e
# see a file vanish at once, and every open re-resolves its path against the model.
ENTRY_TIMEOUT = 1.0

# How libfuse runs the callbacks: "single" is fuse_loop in the serving Python thread, "multi"
# is fuse_loop_mt, a pool of libfuse threads. Every callback from a thread Python does not know
# makes and drops a thread state (ctypes: PyGILState_Ensure/Release), and the GIL lets one
# callback run at a time anyway, so the single loop is the default (bench/README.md compares
# the two, measured side by side by bench/readbench.py).
THREAD_MODELS = ("single", "multi")
THREADS = "single"


def mount_options(allow_other: bool = False,
                  entry_timeout: float = ENTRY_TIMEOUT) -> Dict[str, object]:
    """The libfuse (2.9) mount options pseudofs uses (docs/ARCHITECTURE.md, Caches)."""
    opts: Dict[str, object] = {
        "fsname": "pseudofs",
        "subtype": "pseudofs",            # /proc/mounts: "pseudofs MNT fuse.pseudofs ..."
        "attr_timeout": "0",              # stat sees a size/mode/owner change at once
        "negative_timeout": "0",          # test -e sees a new cgroup or file at once
        "entry_timeout": "%g" % entry_timeout,   # positive dentries: a measured trade-off
        "direct_io": True,                # every open gets FOPEN_DIRECT_IO (open() sets it too)
        "big_writes": True,               # one write(2) <= 128 KiB = one FUSE_WRITE = one command
    }
    if allow_other:
        # Other users may enter the mount: let the kernel check modes and owners as it does on
        # sysfs/cgroupfs (generic_permission) instead of trusting everyone.
        opts["allow_other"] = True
        opts["default_permissions"] = True
    return opts


def _caller() -> Caller:
    uid, gid, pid = fuse_get_context()    # pid is the thread id of the calling task
    return Caller(uid=uid, gid=gid, pid=pid)


_NOBODY_ASKED = Caller()


def _caller_pid() -> int:
    return fuse_get_context()[2]


def _caller_if_needed(path: str) -> Caller:
    """Lookups outside /proc do not depend on who asks (the kernel checks permissions with
    default_permissions): skip the fuse_get_context() call on that hot path."""
    return _caller() if path.startswith("/proc") else _NOBODY_ASKED


class FuseOps:
    """Adapts a `Tree` to fusepy. Every tree call holds `tree.lock`.

    The read path (getattr, open, read, release) is called by `_Loop` below straight from the
    C callbacks; the other operations come through `__call__` as fusepy dispatches them. Errors
    become errnos in `_Loop._wrapper`, for both."""

    use_ns = True      # fusepy: timestamps as integer nanoseconds (and no DeprecationWarning)
    # fuse_operations.flag_nullpath_ok (fusepy copies it over): for an open file whose path
    # libfuse can no longer build (its cgroup was removed), read, write, ftruncate, fgetattr and
    # release are called with a NULL path instead of being answered ENOENT by libfuse itself
    # (get_path_nullok in libfuse's fuse.c), so the tree can say ENODEV as kernfs does.
    flag_nullpath_ok = 1
    # The fault hooks (pseudofs/fs/faultops.py) while a fault plan is live, else None: the
    # only cost of fault injection to a mount without a plan is this test, once per call.
    faults = None

    def __init__(self, tree: Tree, on_init: Optional[Callable[[], None]] = None):
        self.tree = tree
        self._on_init = on_init
        # open file handles: dict get/set/pop and next() on a count are atomic under the GIL
        self._handles: Dict[int, OpenFile] = {}
        self._next_fh = itertools.count(1)
        self._stamp_ns = time.time_ns()      # kernfs/proc inodes keep their creation time
        self._stats: Dict[Attr, bytes] = {}  # struct stat bytes per distinct Attr
        faultops.attach(self, tree, _caller_pid)

    # -- dispatch: fusepy calls operations(name, *args) for the callbacks _Loop leaves to it --
    def __call__(self, op: str, *args):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", op, args[0] if args else "")
        return getattr(self, op)(*args)

    def _locked(self, fn, *args):
        with self.tree.lock:
            return fn(*args)

    # -- lifecycle --
    def init(self, path):
        # FUSE_INIT is the first request the kernel sends on a new mount: the mount is up.
        if self._on_init is not None:
            self._on_init()

    # -- attributes and directories --
    def getattr(self, path, fh=None) -> bytes:
        """The `struct stat` of `path`, as bytes ready to copy into libfuse's buffer."""
        if path is None:          # flag_nullpath_ok: an open file whose directory is gone
            raise FuseOSError(errno.ENODEV)
        if self.faults is not None:
            self.faults.before("getattr", path)
        with self.tree.lock:
            a = self.tree.getattr(path, _caller_if_needed(path))
        st = self._stats.get(a)
        if st is None:
            st = self._stats[a] = self._stat_bytes(a)
            if len(self._stats) > 4096:      # distinct (mode, owner, size) sets: few, unless
                self._stats.clear()          # chown is run over many ids; stay bounded
        return st

    def _stat_bytes(self, a: Attr) -> bytes:
        st = c_stat()                        # zeroed: st_blocks, root's ids, procfs sizes
        st.st_mode = (stat.S_IFDIR if a.is_dir else stat.S_IFREG) | (a.mode & 0o7777)
        st.st_nlink = a.nlink
        st.st_blksize = 4096
        st.st_uid, st.st_gid, st.st_size = a.uid, a.gid, a.size
        sec, nsec = divmod(self._stamp_ns, 10 ** 9)
        for ts in (st.st_atimespec, st.st_mtimespec, st.st_ctimespec):
            ts.tv_sec, ts.tv_nsec = sec, nsec
        return bytes(st)

    def readdir(self, path, fh):
        if self.faults is not None:
            self.faults.before("readdir", path)
        names = self._locked(self.tree.readdir, path, _caller())
        return [".", ".."] + [n for n in names if n not in (".", "..")]

    def statfs(self, path):
        return dict(STATFS)

    # -- open files: one OpenFile per open file description --
    def open(self, path, fi):
        # writers are asked for (permissions, the writer's cgroup); readers only under /proc
        caller = _caller() if fi.flags & 3 else _caller_if_needed(path)
        if self.faults is not None:
            self.faults.before("open", path)
        with self.tree.lock:
            of = self.tree.open(path, fi.flags, caller)
        fh = next(self._next_fh)
        self._handles[fh] = of
        fi.fh = fh
        # FOPEN_DIRECT_IO: reads bypass the page cache, so they are never cut at st_size
        # (0 for procfs/cgroupfs, 4096 for sysfs) and each read(2) reaches us with its offset.
        fi.direct_io = 1
        return 0

    def read(self, path, size, offset, fi) -> bytes:
        of = self._handles[fi.fh]            # KeyError: a bug, reported as EIO
        if self.faults is not None:
            return self.faults.read(of, size, offset)
        # Snapshot per open handle (seq_file semantics): the read of offset 0 renders the
        # whole file; later offsets come from those bytes, whatever the read sizes.
        snap = of.snapshot
        if offset == 0 or snap is None:
            snap = of.snapshot = render(self.tree, of)
        return snap[offset:offset + size]

    def write(self, path, data, offset, fi):
        # One write(2) = one command, as kernfs_fop_write_iter hands each write to ->write();
        # the offset is ignored (sysfs and cgroupfs ignore it too).
        of = self._handles[fi.fh]
        if self.faults is not None:
            self.faults.before("write", of.path)
        with self.tree.lock:
            of.writer = _caller()        # a shared fd may be written by another task
            self.tree.write(of, data)
        return len(data)

    def truncate(self, path, length, fh=None):
        # Shells open with O_TRUNC; libfuse 2 does not ask for FUSE_ATOMIC_O_TRUNC, so the kernel
        # follows the open with SETATTR(size), which fusepy routes here (as ftruncate, with fh).
        # The length is ignored: kernfs_iop_setattr accepts ATTR_SIZE and changes nothing.
        if path is None:                     # flag_nullpath_ok: the file's directory is gone
            raise FuseOSError(errno.ENODEV)
        self._locked(self.tree.truncate, path, _caller())
        return 0

    def release(self, path, fi):
        of = self._handles.pop(fi.fh, None)
        if of is not None:
            with self.tree.lock:
                self.tree.release(of)
        return 0

    # -- namespace changes --
    def mkdir(self, path, mode):
        # The kernel applied the umask already (libfuse 2 does not set FUSE_DONT_MASK).
        self._locked(self.tree.mkdir, path, mode & 0o7777, _caller())
        return 0

    def rmdir(self, path):
        self._locked(self.tree.rmdir, path, _caller())
        return 0

    def chmod(self, path, mode):
        self._locked(self.tree.chmod, path, mode & 0o7777, _caller())
        return 0

    def chown(self, path, uid, gid):
        # uid or gid -1: leave it unchanged (fusepy already turned (uid_t)-1 into -1).
        self._locked(self.tree.chown, path, uid, gid, _caller())
        return 0

    def utimens(self, path, times=None):
        # touch(1) on a sysfs/cgroupfs file succeeds (kernfs_iop_setattr keeps the times); we
        # accept it on any existing path and keep our fixed timestamps.
        self._locked(self.tree.getattr, path, _caller())
        return 0

    def rename(self, old, new):
        # cgroup v2 has no kernfs rename op (only cgroup1_rename exists) and sysfs has no
        # syscall ops: kernfs_iop_rename returns -EPERM.
        raise FuseOSError(errno.EPERM)

    def create(self, path, mode, fi):
        # open(O_CREAT) of a new name: lookup_open()/vfs_create() return -EACCES when the
        # directory has no ->create, as kernfs and procfs directories have none.
        raise FuseOSError(errno.EACCES)

    def mknod(self, path, mode, dev):
        raise FuseOSError(errno.EPERM)      # vfs_mknod(): no ->mknod

    def unlink(self, path):
        raise FuseOSError(errno.EPERM)      # vfs_unlink(): no ->unlink

    def symlink(self, target, source):
        raise FuseOSError(errno.EPERM)      # vfs_symlink(): no ->symlink

    def link(self, target, source):
        raise FuseOSError(errno.EPERM)      # vfs_link(): no ->link


def registered_operations(ops: object) -> List[str]:
    """The fuse_operations members fusepy registers for `ops` (same rule as FUSE.__init__)."""
    names = []
    for field in fuse_operations._fields_:
        name = field[0]
        check = name[1:] if name in ("ftruncate", "fgetattr") else name
        if getattr(ops, check, None) is not None:
            names.append(name)
    return names


STAT_SIZE = ctypes.sizeof(c_stat)

# Names are bytes to the kernel, and kernfs takes any but "/" and "\n": a name that is not
# UTF-8 (stat or mkdir of $'\xff') must reach the tree as a str that encodes back to the same
# bytes, not fail in fusepy's strict decode. fusepy decodes and encodes every path and name
# with its `encoding`: this codec is UTF-8 with surrogateescape.
PATH_CODEC = "pseudofs_path"
_UTF8 = codecs.lookup("utf-8")


def _find_codec(name: str):
    if name != PATH_CODEC:
        return None
    return codecs.CodecInfo(
        name=PATH_CODEC,
        encode=lambda s, errors="surrogateescape": _UTF8.encode(s, "surrogateescape"),
        decode=lambda b, errors="surrogateescape": _UTF8.decode(b, "surrogateescape"))


codecs.register(_find_codec)


class _Loop(FUSE):
    """fusepy's FUSE (it mounts in __init__ and runs libfuse's loop) with two things done here:

    - the callbacks of the read path call FuseOps directly: fusepy's own versions go through
      operations(name, ...) and fill a struct stat one ctypes field at a time (set_st_attrs),
      which cost twice the whole of the minimal fusepy file's Python work per
      open+fstat+read+read+close of memory.stat (bench/README.md);
    - `_wrapper` (every callback goes through it) turns errors into errnos: FuseOSError and
      ModelError into theirs, anything else is a bug, logged (the suite fails on it) as EIO.
    """

    @staticmethod
    def _wrapper(func, *args):
        try:
            return func(*args) or 0
        except FuseOSError as e:              # an errno we chose (any other OSError is a bug)
            if e.errno and e.errno > 0:
                return -e.errno
            log.error("%s: FuseOSError without a valid errno; returning EIO", func.__name__,
                      exc_info=True)
        except ModelError as e:
            if isinstance(e.errno, int) and e.errno > 0:
                return -e.errno
            log.error("%s: ModelError without a valid errno; returning EIO", func.__name__,
                      exc_info=True)
        except Exception:
            # A bare exception reaching here is a bug in the tree: say so loudly.
            log.error("%s %r failed; returning EIO", func.__name__, args[:1], exc_info=True)
        except BaseException:                 # SystemExit, KeyboardInterrupt in a callback:
            log.critical("%s: leaving the loop", func.__name__, exc_info=True)
            fuse_exit()                       # libfuse must not unwind; leave its loop instead
        return -errno.EIO

    def getattr(self, path, buf):
        st = self.operations.getattr(path.decode("utf-8", "surrogateescape"))   # PATH_CODEC
        ctypes.memmove(buf, st, STAT_SIZE)
        return 0

    def fgetattr(self, path, buf, fip):
        if path is None:
            st = self.operations.getattr(None, fip.contents)
        else:
            st = self.operations.getattr(path.decode("utf-8", "surrogateescape"))
        ctypes.memmove(buf, st, STAT_SIZE)
        return 0

    def open(self, path, fip):
        return self.operations.open(path.decode("utf-8", "surrogateescape"), fip.contents)

    def read(self, path, buf, size, offset, fip):
        data = self.operations.read(None, size, offset, fip.contents)
        ctypes.memmove(buf, data, len(data))
        return len(data)

    def release(self, path, fip):
        return self.operations.release(None, fip.contents)


class MountFailed(Exception):
    """libfuse could not mount (it printed its reason on stderr)."""


def serve(tree: Tree, mountpoint: str, allow_other: bool = False,
          entry_timeout: float = ENTRY_TIMEOUT, threads: str = THREADS,
          on_init: Optional[Callable[[], None]] = None) -> None:
    """Mount `tree` at `mountpoint` and serve it (`threads`: see THREADS) until it is unmounted.

    Runs in the calling thread. In the main thread, SIGINT/SIGTERM/SIGHUP end the loop through
    libfuse's own handlers (installed only where the disposition is SIG_DFL; fusepy resets SIGINT
    to SIG_DFL), after which libfuse unmounts (fuse_teardown -> fuse_unmount).
    """
    ops = FuseOps(tree, on_init=on_init)
    try:
        _Loop(ops, mountpoint, raw_fi=True, encoding=PATH_CODEC, foreground=True,
             nothreads=(threads == "single"), **mount_options(allow_other, entry_timeout))
    except RuntimeError as e:       # fusepy: fuse_main_real() returned nonzero
        raise MountFailed("libfuse could not mount %s (status %s)" % (mountpoint, e)) from None
