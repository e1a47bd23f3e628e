"""The contract between the fusepy adapter and the route table.

`fuseops` (the only module that imports fusepy) calls a `Tree`; the route table implements it.
Every method may raise `pseudofs.errors.ModelError(errno, msg)`; the adapter turns it into that errno.
The adapter holds `tree.lock` around every call into the tree, so the model sees one caller at a time.
"""

from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Protocol


@dataclass(frozen=True)
class Caller:
    """Who asks: from fuse_get_context() (pid is the thread id the kernel reports)."""

    uid: int = 0
    gid: int = 0
    pid: int = 0


class Attr(NamedTuple):
    """A tuple, so the adapter can key its ready-made `struct stat` bytes on it cheaply."""

    is_dir: bool
    mode: int            # permission bits only (e.g. 0o444, 0o755); the adapter adds S_IFDIR/S_IFREG
    uid: int = 0
    gid: int = 0
    size: int = 0
    nlink: int = 1


class OpenFile:
    """One open file description: the snapshot rendered at offset 0, plus route-private state.
    (A plain class with slots: one is made per open, on the read path.)"""

    __slots__ = ("path", "flags", "caller", "snapshot", "private", "writer")

    def __init__(self, path: str, flags: int, caller: Caller,
                 snapshot: Optional[bytes] = None, private: Optional[dict] = None,
                 writer: Optional[Caller] = None):
        self.path = path
        self.flags = flags
        self.caller = caller                      # who opened it (the kernel's f_cred)
        self.snapshot = snapshot
        self.private = {} if private is None else private   # e.g. memory.peak's reset value
        self.writer = writer                      # who issues the current write ("current")

    def __repr__(self) -> str:
        return "OpenFile(%r, flags=%#o, caller=%r)" % (self.path, self.flags, self.caller)

    @property
    def current(self) -> Caller:
        """The task doing the current write (pid 0 in cgroup.procs, the writer's cgroup);
        permissions stay with the opener, as the kernel checks the file's credentials."""
        return self.writer or self.caller


class Tree(Protocol):
    lock: Any

    def getattr(self, path: str, caller: Caller) -> Attr: ...
    def readdir(self, path: str, caller: Caller) -> List[str]: ...
    def open(self, path: str, flags: int, caller: Caller) -> OpenFile: ...
    def read(self, of: OpenFile) -> bytes: ...                 # render the whole file now
    def write(self, of: OpenFile, data: bytes) -> None: ...    # one write() = one command
    def release(self, of: OpenFile) -> None: ...               # the last close of `of`
    def truncate(self, path: str, caller: Caller) -> None: ...
    def mkdir(self, path: str, mode: int, caller: Caller) -> None: ...
    def rmdir(self, path: str, caller: Caller) -> None: ...
    def chown(self, path: str, uid: int, gid: int, caller: Caller) -> None: ...
    def chmod(self, path: str, mode: int, caller: Caller) -> None: ...


def render(tree: Tree, of: OpenFile) -> bytes:
    """The whole file `of` reads, rendered now under the tree's lock: what a read at offset 0
    keeps as the handle's snapshot (seq_file semantics)."""
    with tree.lock:
        data = tree.read(of)
    if not isinstance(data, bytes):
        raise TypeError("tree.read(%r) returned %s, not bytes" % (of.path, type(data)))
    return data
