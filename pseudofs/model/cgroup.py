"""The cgroup v2 hierarchy (kernel/cgroup/cgroup.c) as the model keeps it."""

from typing import Dict, Iterator, List, Optional, Tuple

from pseudofs.model.limits import INT_MAX

CONTROLLERS = ("memory",)        # model choice: the one controller modeled (README, Model choices)


class Cgroup:
    STATE = ("children", "subtree_control", "memcg", "procs", "freeze", "max_descendants",
             "max_depth", "uid", "gid", "mode", "file_owner", "file_mode", "removed")
    CACHE = ("nr_desc", "nr_desc_memcg", "nr_procs_subtree")    # counts over the subtree
    FIXED = ("name", "parent")

    def state_key(self):
        return ("cgroup", self.path)

    def __init__(self, name: str, parent: Optional["Cgroup"], uid: int = 0, gid: int = 0,
                 mode: int = 0o755):
        self.name = name
        self.parent = parent
        self.children: Dict[str, "Cgroup"] = {}
        self.subtree_control: set = set()
        self.memcg = None                    # own Memcg when the parent enabled memory
        self.procs: Dict[int, float] = {}    # pid -> join time (the model's clock)
        self.freeze = 0
        self.max_descendants = INT_MAX
        self.max_depth = INT_MAX
        self.uid, self.gid, self.mode = uid, gid, mode
        self.file_owner: Dict[str, Tuple[int, int]] = {}   # chown of single files (delegation)
        self.file_mode: Dict[str, int] = {}
        self.removed = False
        # counts over the subtree, kept on every change so reads never walk the tree
        self.nr_desc = 0             # live descendants
        self.nr_desc_memcg = 0       # live descendants with their own memcg
        self.nr_procs_subtree = 0    # processes here and below (cgroup.events populated)

    # --- paths ------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        parts = []
        c = self
        while c.parent is not None:
            parts.append(c.name)
            c = c.parent
        return "/" + "/".join(reversed(parts))

    def is_root(self) -> bool:
        return self.parent is None

    def level(self) -> int:
        n, c = 0, self
        while c.parent is not None:
            n += 1
            c = c.parent
        return n

    def ancestors(self) -> Iterator["Cgroup"]:
        """Self, then the parent, up to the root."""
        c = self
        while c is not None:
            yield c
            c = c.parent

    def descendants(self) -> Iterator["Cgroup"]:
        """Every cgroup below this one (pre-order), not including itself."""
        stack = list(self.children.values())[::-1]
        while stack:
            c = stack.pop()
            yield c
            stack.extend(list(c.children.values())[::-1])

    # --- controllers ----------------------------------------------------------------------------
    def controllers(self) -> List[str]:
        """cgroup.controllers: the root has them all; a child what its parent enabled."""
        if self.parent is None:
            return list(CONTROLLERS)
        return [c for c in CONTROLLERS if c in self.parent.subtree_control]

    def has_memory_files(self) -> bool:
        return self.parent is not None and "memory" in self.parent.subtree_control

    def nearest_memcg(self):
        """The memcg of this cgroup: its own, else the nearest ancestor's (the root has one)."""
        for c in self.ancestors():
            if c.memcg is not None:
                return c.memcg
        raise AssertionError("the root cgroup always has a memcg")

    # --- state ----------------------------------------------------------------------------------
    def populated(self) -> bool:
        return self.nr_procs_subtree > 0

    def add_proc(self, pid: int, when: float) -> None:
        if pid not in self.procs:
            for c in self.ancestors():
                c.nr_procs_subtree += 1
        self.procs[pid] = when

    def remove_proc(self, pid: int) -> None:
        if self.procs.pop(pid, None) is not None:
            for c in self.ancestors():
                c.nr_procs_subtree -= 1

    def link_child(self, child: "Cgroup") -> None:
        """Insert a new child: the ancestors' descendant counts grow by one."""
        self.children[child.name] = child
        for c in self.ancestors():
            c.nr_desc += 1

    def unlink_child(self, child: "Cgroup") -> None:
        del self.children[child.name]
        for c in self.ancestors():
            c.nr_desc -= 1

    def memcg_count(self, delta: int) -> None:
        """This cgroup got (+1) or lost (-1) its own memcg."""
        for c in self.parent.ancestors():
            c.nr_desc_memcg += delta

    def frozen(self) -> bool:
        """cgroup.events `frozen`: this cgroup or an ancestor asked to freeze (e_freeze)."""
        return any(c.freeze for c in self.ancestors())

    def nr_descendants(self) -> int:
        return self.nr_desc

    def nr_memory_csses(self) -> int:
        """cgroup.stat nr_subsys_memory: live memory csses here and below."""
        return 1 + self.nr_desc_memcg if self.memcg is not None else 0


def split_path(path: str) -> List[str]:
    return [p for p in path.split("/") if p]
