"""What a row of the file table is (docs/ARCHITECTURE.md, "The file table").

A `Row` describes one kernel file or directory as data: its path template, mode, owner and size
rules, flags, the renderer of a read and, for a writable file, a pure `parse` and an `apply` that
calls the model. `Param` is a path segment that stands for many names (`node{nid}`, a pid, a
cgroup). Nothing here knows FUSE: fs/routes.py builds getattr, readdir, open, read and write
from these rows, boot.py and config_check.py use the same `Write` for the configuration.
"""

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Tuple

# Directory listing orders: kernfs (sysfs, cgroupfs: kernfs_sd_compare), procfs (proc_match:
# length, then bytes; then the pid entries) and debugfs (in the order the table gives).
KERNFS, PROCFS, TABLE = "kernfs", "procfs", "table"
PAGE = "page"                      # a size rule: the model's page size (sysfs attributes)


class Ctx:
    """Where a path resolved: the serving environment (`env`: .model, .host, .caller) and the
    values its parameters bound. Built by the resolver, handed to every row callable."""

    __slots__ = ("env", "cg", "nid", "cpu", "pid", "name")

    def __init__(self, env, cg=None):
        self.env = env
        self.cg = cg                  # the cgroup of a cgroupfs path
        self.nid = self.cpu = self.pid = self.name = None

    @property
    def model(self):
        return self.env.model

    @property
    def host(self):                   # looked up on each use: the state log swaps it per call
        return self.env.host


@dataclass(frozen=True)
class Write:
    """A writable file: `parse(data, page_size)` turns the bytes of one write(2) into a value or
    raises ModelError with the kernel's errno; `apply(ctx, value, io)` makes the model call.
    `io` is the writing context (.of: the OpenFile, .host) or None when the configuration applies
    the value at boot; `config` says the configuration may set the file (its apply needs no io)."""

    parse: Callable[[bytes, int], object]
    apply: Callable[[Ctx, object, object], None]
    config: bool = False


@dataclass(frozen=True)
class Param:
    """A segment that stands for many names. `match(ctx, seg)` binds the value into ctx and
    returns True; `names(ctx)` lists the names in a directory. A `recursive` param (cgroups)
    may repeat: `a/b/c` are three cgroup segments below one another."""

    name: str
    match: Callable[[Ctx, str], bool]
    names: Callable[[Ctx], Iterable[str]]
    recursive: bool = False
    caller: bool = False          # the names depend on who asks (/proc/self)


@dataclass(frozen=True)
class Row:
    path: str                                    # "/a/{param}/b": segments, params in braces
    mode: int
    is_dir: bool = False
    read: Optional[Callable] = None              # (ctx, of) -> bytes
    write: Optional[Write] = None
    writable: Optional[Callable[[Ctx], bool]] = None   # where a version makes it read-only
    size: object = 0                             # bytes, PAGE, or (ctx) -> bytes
    exists: Optional[Callable[[Ctx], bool]] = None
    owner: Optional[Callable[[Ctx], Tuple[int, int, int]]] = None   # -> (uid, gid, mode)
    order: str = KERNFS                          # directories: how they list
    cache: bool = True           # the same model state gives the same bytes, whoever reads
    caller: bool = False         # depends on who asks: never cached
    members: bool = False        # shows where processes are: exited ones are reaped first
    bind: bool = False           # `pseudofs exec` binds it over the host's same path
    cgroup_file: bool = False    # a file of a cgroup directory: chown/chmod act on it
    enter: Optional[Callable[[Ctx], None]] = None   # binds what paths below it need

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def segments(self) -> Tuple[str, ...]:
        return tuple(s for s in self.path.split("/") if s)


def param_of(segment: str) -> Optional[str]:
    """The parameter name of a "{name}" segment, else None."""
    if segment.startswith("{") and segment.endswith("}"):
        return segment[1:-1]
    return None
