"""The route table at work: the rows of pseudofs/files/table.py as a trie of path segments,
resolved against the model on every call. getattr, readdir, open, read, write, mkdir, rmdir,
chown and chmod all go through `resolve`; nothing here names a kernel file.

Caching (docs/ARCHITECTURE.md, "Caches"): a resolved path, its attributes and its rendered bytes
are kept until the model changes (`model.generation`) or a call that may change it ends
(`_epoch`); rows that depend on the caller, or on the open file, are never kept.
"""

import errno
import functools
import threading
from typing import Dict, List, Optional, Tuple

from pseudofs.errors import ModelError
from pseudofs.faults.engine import FaultEngine
from pseudofs.files import kernfs
from pseudofs.files.rows import KERNFS, PAGE, PROCFS, Ctx, Row, param_of
from pseudofs.files.table import PARAMS, TABLE_ROWS
from pseudofs.fs.tree import Attr, Caller, OpenFile

CGROOT = "/sys/fs/cgroup"


class _Node:
    """One trie node: the row of this path, its literal children, its parameter children."""

    __slots__ = ("row", "literals", "params")

    def __init__(self):
        self.row: Optional[Row] = None
        self.literals: Dict[str, "_Node"] = {}
        self.params: List[Tuple[object, "_Node"]] = []


def build_trie(rows) -> _Node:
    root = _Node()
    for row in rows:
        node = root
        for seg in row.segments():
            name = param_of(seg)
            if name is None:
                node = node.literals.setdefault(seg, _Node())
                continue
            param = PARAMS[name]
            for p, child in node.params:
                if p is param:
                    node = child
                    break
            else:
                child = node if param.recursive else _Node()   # a cgroup below a cgroup
                node.params.append((param, child))
                node = child
        if node.row is not None:
            raise ValueError("two rows for %s" % row.path)
        node.row = row
    return root


TRIE = build_trie(TABLE_ROWS)


def _exists(row: Row, x: Ctx) -> bool:
    return row.exists is None or row.exists(x)


def _write_of(row: Row, x: Ctx):
    """The row's Write where this file takes writes (some versions make a file read-only)."""
    if row.write is None or (row.writable is not None and not row.writable(x)):
        return None
    return row.write


class _Io:
    """What a write's `apply` may ask about the write: the open file and the host."""

    __slots__ = ("of", "host", "_model")

    def __init__(self, of: OpenFile, host, model):
        self.of, self.host, self._model = of, host, model

    def writer_cgroup(self):
        """The model's cgroup of the writing task (README, Control files)."""
        pid = self.of.current.pid
        return self._model.cgroup_of(self.host.tgid(pid) or pid, self.host)


def _mutating(method):
    """A call that may change the model, even when it fails (a refused charge counts events):
    cached resolutions and renders are dropped afterwards."""
    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *args)
        finally:
            self._epoch += 1
    return wrapper


class Routes:
    """The Tree of pseudofs/fs/tree.py over a Model; `host` answers questions about processes."""

    def __init__(self, model, host):
        self.model = model
        self.host = host
        self.faults = FaultEngine()          # the live fault plan (docs/faults.md)
        self.caller = Caller()
        self.lock = threading.Lock()
        self._nodes: Dict[str, Tuple[Row, Ctx, _Node]] = {}
        self._attrs: Dict[str, Attr] = {}
        self._renders: Dict[str, bytes] = {}
        self._epoch = 0
        self._key = None

    # --- resolution ----------------------------------------------------------------------------
    def _fresh(self) -> None:
        key = (self.model.generation, self._epoch)
        if key != self._key:
            self._nodes.clear()
            self._attrs.clear()
            self._renders.clear()
            self._key = key

    def _walk(self, path: str):
        """(row, ctx, trie node, cacheable) of `path`, or None."""
        x = Ctx(self)
        node, cacheable = TRIE, True
        for seg in path.split("/"):
            if not seg:
                continue
            child = node.literals.get(seg)
            if child is not None and child.row is not None:
                if child.row.enter is not None:
                    child.row.enter(x)
                if _exists(child.row, x):
                    node = child
                    cacheable = cacheable and not child.row.caller
                    continue
            for param, pnode in node.params:
                if param.match(x, seg):
                    node = pnode
                    cacheable = cacheable and not param.caller
                    break
            else:
                return None
            if not _exists(node.row, x):
                return None
        if node.row is None:
            return None
        return node.row, x, node, cacheable and node.row.cache and not node.row.caller

    def resolve(self, path: str, caller: Caller = Caller()) -> Tuple[Row, Ctx, _Node]:
        self.caller = caller
        self._fresh()
        hit = self._nodes.get(path)
        if hit is not None:
            return hit
        found = self._walk(path)
        if found is None:
            raise ModelError(errno.ENOENT, path)
        row, x, node, cacheable = found
        if cacheable:
            self._nodes[path] = (row, x, node)
        return row, x, node

    @property
    def live(self) -> bool:
        """Time moves on this mount (docs/time.md)."""
        return self.model.config.kernel.clock == "live"

    def now(self) -> float:
        """Seconds since boot: asked of the host on a live clock (so the state log records
        it), 0 on a frozen one, where every time counter stays 0."""
        return self.host.clock() if self.live else 0.0

    def reap(self) -> None:
        """Model.reap() before anything that shows membership or depends on it: an exited
        process neither shows in cgroup.procs or /proc nor keeps a cgroup populated."""
        if self.model.reap(self.host):
            self._fresh()                # what was resolved or rendered before is stale

    def listing(self, node: _Node, x: Ctx) -> List[str]:
        """A directory's names, in the order its filesystem lists them."""
        files = [name for name, child in node.literals.items()
                 if child.row is not None and _exists(child.row, x)]
        params = [n for param, _ in node.params for n in param.names(x)]
        order = node.row.order
        if order == KERNFS:
            return kernfs.order(files + params)
        if order == PROCFS:      # proc_match(): by length, then bytes; then self and the pids
            files.sort(key=lambda n: (len(n), n.encode("utf-8", "surrogateescape")))
        return files + params

    # --- the Tree interface ------------------------------------------------------------------
    def getattr(self, path: str, caller: Caller) -> Attr:
        row, x, _ = self.resolve(path, caller)
        a = self._attrs.get(path)
        if a is None:
            uid, gid, mode = row.owner(x) if row.owner else (0, 0, row.mode)
            if row.is_dir:
                a = Attr(True, mode, uid, gid, 0, 2)
            else:
                size = row.size
                if size == PAGE:
                    size = self.model.page_size
                elif callable(size):
                    size = size(x)
                a = Attr(False, mode, uid, gid, size, 1)
            if path in self._nodes:
                self._attrs[path] = a
        return a

    def readdir(self, path: str, caller: Caller) -> List[str]:
        row, x, node = self.resolve(path, caller)
        if not row.is_dir:
            raise ModelError(errno.ENOTDIR, path)
        return self.listing(node, x)

    def open(self, path: str, flags: int, caller: Caller) -> OpenFile:
        row, x, _ = self.resolve(path, caller)
        if row.is_dir:
            raise ModelError(errno.EISDIR, path)
        acc = flags & 3
        # kernfs_fop_open(): no write handler for a write open, no read handler for a read
        if (acc != 0 and _write_of(row, x) is None) or (acc != 1 and row.read is None):
            raise ModelError(errno.EACCES, path)
        return OpenFile(path, flags, caller)

    def _for_io(self, of: OpenFile) -> Tuple[Row, Ctx]:
        try:
            row, x, _ = self.resolve(of.path, of.caller)
        except ModelError:
            raise ModelError(errno.ENODEV, of.path) from None   # removed while open
        if row.is_dir:
            raise ModelError(errno.EISDIR, of.path)
        return row, x

    def read(self, of: OpenFile) -> bytes:
        row, x = self._for_io(of)
        if row.read is None:
            raise ModelError(errno.EINVAL, of.path)
        if row.members:
            self.reap()
        if of.path not in self._nodes:          # per caller or per open file: never kept
            return row.read(x, of)
        data = self._renders.get(of.path)
        if data is None:
            data = self._renders[of.path] = row.read(x, of)
        return data

    @_mutating
    def write(self, of: OpenFile, data: bytes) -> None:
        row, x = self._for_io(of)
        write = _write_of(row, x)
        if write is None:
            raise ModelError(errno.EINVAL, of.path)
        value = write.parse(bytes(data), self.model.page_size)
        write.apply(x, value, _Io(of, self.host, self.model))

    def release(self, of: OpenFile) -> None:
        cg = of.private.get("peak_cgroup")
        if cg is not None:
            self.model.peak_release(cg, id(of))

    def truncate(self, path: str, caller: Caller) -> None:
        row, x, _ = self.resolve(path, caller)
        if row.is_dir:
            raise ModelError(errno.EISDIR, path)
        if _write_of(row, x) is None:
            raise ModelError(errno.EACCES, path)

    def _cgroup_dir(self, path: str, caller: Caller):
        """The cgroup of a cgroup directory path; EPERM elsewhere (no mkdir/rmdir there)."""
        row, x, _ = self.resolve(path, caller)
        if not row.is_dir:
            raise ModelError(errno.ENOTDIR, path)
        if not (path == CGROOT or path.startswith(CGROOT + "/")):
            raise ModelError(errno.EPERM, path)
        return x.cg

    @_mutating
    def mkdir(self, path: str, mode: int, caller: Caller) -> None:
        parent, name = path.rsplit("/", 1)
        if not path.startswith(CGROOT + "/"):
            raise ModelError(errno.EPERM, path)
        try:
            self._cgroup_dir(parent, caller)
        except ModelError as e:
            raise ModelError(errno.ENOENT if e.errno != errno.EPERM else e.errno, path) from None
        try:
            self.resolve(path, caller)
            raise ModelError(errno.EEXIST, path)      # a file (or cgroup) of that name
        except ModelError as e:
            if e.errno != errno.ENOENT:
                raise
        self.model.mkdir(path[len(CGROOT):], caller.uid, caller.gid, mode & 0o7777)

    @_mutating
    def rmdir(self, path: str, caller: Caller) -> None:
        cg = self._cgroup_dir(path, caller)
        self.reap()                      # exited members do not keep it populated
        self.model.rmdir(cg.path)        # the root: EBUSY

    def _owned(self, path: str, caller: Caller):
        """(cgroup, file name or None) that chown/chmod of `path` change; EPERM elsewhere."""
        row, x, _ = self.resolve(path, caller)
        if row.cgroup_file:
            return x.cg, row.name
        if row.is_dir and x.cg is not None and row.path == CGROOT:
            return x.cg, None
        raise ModelError(errno.EPERM, path)

    @_mutating
    def chown(self, path: str, uid: int, gid: int, caller: Caller) -> None:
        cg, name = self._owned(path, caller)
        if name is None:
            # kernfs: the files keep the owner they were created with (the cgroup's creator);
            # chown of the directory alone does not hand them over (delegation chowns
            # cgroup.procs, cgroup.threads and cgroup.subtree_control one by one)
            for f in _CGROUP_FILE_NAMES:
                cg.file_owner.setdefault(f, (cg.uid, cg.gid))
            cg.uid = cg.uid if uid == -1 else uid
            cg.gid = cg.gid if gid == -1 else gid
        else:
            ou, og = cg.file_owner.get(name, (cg.uid, cg.gid))
            cg.file_owner[name] = (ou if uid == -1 else uid, og if gid == -1 else gid)
        self.model.changed()

    @_mutating
    def chmod(self, path: str, mode: int, caller: Caller) -> None:
        cg, name = self._owned(path, caller)
        if name is None:
            cg.mode = mode & 0o7777
        else:
            cg.file_mode[name] = mode & 0o7777
        self.model.changed()


_CGROUP_FILE_NAMES = tuple(row.name for row in TABLE_ROWS if row.cgroup_file)


def build_tree(config, host=None, clock_default: str = "frozen") -> Routes:
    """The route table over a model booted from `config` (boot.build_model); a config that
    leaves kernel.clock unset gets `clock_default` (`pseudofs mount` passes live)."""
    from pseudofs.boot import build_model, with_clock
    from pseudofs.fs.host import ProcHost
    tree = Routes(build_model(with_clock(config, clock_default)), host or ProcHost())
    if config.faults is not None:
        tree.faults.load(config.faults)          # the configuration's `faults:` plan
    return tree
