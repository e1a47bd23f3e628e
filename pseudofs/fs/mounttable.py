"""The mount table a process inside `pseudofs exec` reads: the real /proc/PID/mountinfo and
/proc/PID/mounts with the binds shown as the real system shows those paths.

- A bind where the real filesystem is mounted itself (cgroup2 at /sys/fs/cgroup) becomes that
  mount: its type, source and options, root "/".
- The other binds (single /proc files, sysfs directories) are left out: on a real system they
  are part of /proc and /sys.
- The host mounts the binds hide are left out (on a cgroup v1 host: the hierarchies below
  /sys/fs/cgroup and the tmpfs that holds them), and a shown entry whose parent was left out
  takes the nearest shown ancestor as its parent. Mounts the host itself stacks stay.

Formats: show_mountinfo() and show_vfsmnt() in fs/proc_namespace.c. Pure text in, text out.
"""

from typing import Dict, List, Optional

from pseudofs.fs.fskind import MOUNTED_AT


class Entry:
    __slots__ = ("fields", "sep", "id", "parent", "dev", "root", "point")

    def __init__(self, line: str):
        self.fields = line.split(" ")
        self.sep = self.fields.index("-", 6)
        f = self.fields
        self.id, self.parent, self.dev, self.root, self.point = (int(f[0]), int(f[1]), f[2],
                                                                 f[3], f[4])


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _hidden(entries: Dict[int, Entry]) -> set:
    """Mounts nobody can reach: covered (another mount sits on their root), below a sibling
    mounted on one of their ancestors' directories, or inside an unreachable or covered mount
    (but for the mount that covers it)."""
    children: Dict[int, List[Entry]] = {}
    for e in entries.values():
        children.setdefault(e.parent, []).append(e)

    def covered(e: Entry) -> bool:
        return any(c.point == e.point for c in children.get(e.id, ()) if c is not e)

    memo: Dict[int, bool] = {}

    def unreachable(e: Entry, depth: int = 0) -> bool:
        if e.id in memo:
            return memo[e.id]
        memo[e.id] = False                       # a loop in a racy read: stop there
        bad = any(s is not e and s.point != e.point and _under(e.point, s.point)
                  for s in children.get(e.parent, ()))
        p = entries.get(e.parent)
        if not bad and p is not None and p is not e and depth < 256:
            bad = unreachable(p, depth + 1) or (covered(p) and e.point != p.point)
        memo[e.id] = bad
        return bad

    return {e.id for e in entries.values() if unreachable(e) or covered(e)}


def _plan(mountinfo: str, bound_paths, fuse_dev: str):
    """[(index in the table, Entry, kind or None, parent id to show)] of the shown entries."""
    lines = mountinfo.splitlines()
    entries = {}
    order = []
    for i, line in enumerate(lines):
        try:
            e = Entry(line)
        except (ValueError, IndexError):
            order.append((i, None))
            continue
        entries[e.id] = e
        order.append((i, e))
    binds = {e.id for e in entries.values() if e.dev == fuse_dev and e.point in bound_paths}
    # only what the binds hide: mounts the host itself stacks stay as the host shows them
    hidden = _hidden(entries) - _hidden({k: e for k, e in entries.items() if k not in binds})
    drop = set(hidden)
    kinds = {}
    for i in binds - hidden:
        if entries[i].point in MOUNTED_AT:
            kinds[i] = entries[i].point
        else:
            drop.add(i)
    plan = []
    for i, e in order:
        if e is None:
            plan.append((i, None, None, None))
            continue
        if e.id in drop:
            continue
        parent, seen = e.parent, set()
        while parent in drop and parent in entries and parent not in seen:
            seen.add(parent)
            parent = entries[parent].parent
        plan.append((i, e, kinds.get(e.id), parent))
    return lines, plan


def mountinfo(real: str, bound_paths, fuse_dev: str) -> str:
    """/proc/PID/mountinfo inside exec from the real one. `fuse_dev` is the mount's
    "major:minor" as mountinfo shows it."""
    lines, plan = _plan(real, bound_paths, fuse_dev)
    out = []
    for i, e, at, parent in plan:
        if e is None:
            out.append(lines[i])
            continue
        f = list(e.fields)
        f[1] = str(parent)
        if at is not None:
            fstype, opts = MOUNTED_AT[at]
            f[3] = "/"
            rw = f[5].split(",")[0]
            f[e.sep + 1:] = [fstype, fstype, rw + ("," + opts if opts else "")]
        out.append(" ".join(f))
    return "".join(line + "\n" for line in out)


def mounts(real_mounts: str, real_mountinfo: str, bound_paths, fuse_dev: str) -> Optional[str]:
    """/proc/PID/mounts inside exec. Both files list the namespace's mounts in the same order
    (both walk it with m_start()/m_next()); None when the two reads disagree (a mount came or
    went between them) and the caller should read again."""
    mlines = real_mounts.splitlines()
    lines, plan = _plan(real_mountinfo, bound_paths, fuse_dev)
    if len(mlines) != len(lines):
        return None
    out = []
    for i, e, at, _parent in plan:
        if e is not None and mlines[i].split(" ")[1] != e.point:
            return None
        if at is None:
            out.append(mlines[i])
            continue
        fstype, opts = MOUNTED_AT[at]
        # show_vfsmnt(): devname, mount point, type, "rw" and the mount's flags (the same as
        # mountinfo's mount options), the filesystem's own options, "0 0"
        out.append("%s %s %s %s%s 0 0" % (fstype, e.point, fstype, e.fields[5],
                                          "," + opts if opts else ""))
    return "".join(line + "\n" for line in out)
