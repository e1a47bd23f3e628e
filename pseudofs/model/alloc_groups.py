"""Allocation groups behind MNT/sys/kernel/debug/percpu_test/{alloc,free} (README, Control files):
tagged batches of percpu objects, as a test module would make with __alloc_percpu_gfp()."""

import errno
from typing import Dict, List, Optional

from pseudofs.errors import ModelError

MAX_COUNT = 100000          # our control files: objects in one alloc command


class AllocGroup:
    STATE = ("objects",)
    FIXED = ("tag", "cgroup", "size", "align", "account", "objcg", "memcg")
    __slots__ = STATE + FIXED

    def state_key(self):
        return ("group", self.tag)

    def __init__(self, tag, cgroup, size, align, account, objcg, memcg):
        self.tag, self.cgroup, self.size, self.align = tag, cgroup, size, align
        self.account, self.objcg, self.memcg = account, objcg, memcg
        self.objects: List = []

    def shown_cgroup(self):
        """The cgroup the command named, replaced after a reparent by the cgroup whose memcg
        now holds the objects; a removed cgroup shows as its nearest live ancestor."""
        if self.objcg is not None and self.objcg.memcg is not self.memcg:
            return self.objcg.memcg.cgroup
        cg = self.cgroup
        while cg.removed:
            cg = cg.parent
        return cg


class AllocGroups:
    STATE = ("groups", "next_tag")
    FIXED = ("model",)

    def __init__(self, model):
        self.model = model
        self.groups: Dict[str, AllocGroup] = {}
        self.next_tag = 1          # automatic tags: t1, t2, ...

    def _new_tag(self) -> str:
        while True:
            tag = f"t{self.next_tag}"
            self.next_tag += 1
            if tag not in self.groups:
                return tag

    def alloc(self, size: int, count: int, align: int, cgroup, tag: Optional[str],
              account: bool) -> AllocGroup:
        if not 1 <= count <= MAX_COUNT:
            raise ModelError(errno.EINVAL, f"count must be 1..{MAX_COUNT}")
        k = self.model.kernel
        size, align = k.pcpu.check_request(size, align)
        next_tag = self.next_tag
        if tag is None:
            tag = self._new_tag()
        elif tag in self.groups:
            raise ModelError(errno.EEXIST, f"tag {tag} is live")
        memcg = cgroup.nearest_memcg()
        objcg = memcg.objcg if account and not memcg.is_root() else None
        group = AllocGroup(tag, cgroup, size, align, account, objcg, memcg)
        try:
            with k.transaction([memcg]):
                for _ in range(count):
                    group.objects.append(k.pcpu_alloc(size, align, objcg, account))
        except ModelError:
            self.next_tag = next_tag         # a refused command uses up no automatic tag
            raise
        self.groups[tag] = group
        self.model.changed()
        return group

    def free_tag(self, tag: str, count: Optional[int] = None) -> None:
        group = self.groups.get(tag)
        if group is None:
            raise ModelError(errno.ENOENT, f"no group {tag}")
        n = len(group.objects) if count is None else count
        if not 1 <= n <= len(group.objects):
            raise ModelError(errno.EINVAL, f"count must be 1..{len(group.objects)}")
        self._free(group, n)
        self.model.changed()

    def free_cgroup(self, path: str) -> None:
        path = self.model.lookup(path).path    # ENOENT when there is no such cgroup; "/a/" is "/a"
        hits = [g for g in self.groups.values() if g.shown_cgroup().path == path]
        for g in hits:
            self._free(g, len(g.objects))
        if hits:
            self.model.changed()

    def free_all(self) -> None:
        for g in list(self.groups.values()):
            self._free(g, len(g.objects))
        self.model.changed()

    def _free(self, group: AllocGroup, n: int) -> None:
        k = self.model.kernel
        for _ in range(n):
            k.pcpu_free(group.objects.pop())
        if not group.objects:
            del self.groups[group.tag]

    def listing(self) -> List[dict]:
        return [{"tag": g.tag, "cgroup": g.shown_cgroup().path, "size": g.size,
                 "align": g.align, "count": len(g.objects), "account": int(g.account)}
                for g in self.groups.values()]
