"""Permission rules the kernel applies inside cgroupfs, beyond what the VFS checks at open.

With `--allow-other` the mount has `default_permissions`: the kernel itself checks the modes and
owners our files report (open for write, mkdir/rmdir in a directory, chown, chmod), exactly as
on cgroupfs, sysfs and debugfs (debugfs is 0700 root: its control files are root-only). What
the VFS cannot know is the rule of `cgroup.procs` writes: migrating a process also needs write
access to the `cgroup.procs` of the common ancestor of its source and destination cgroups
(kernel/cgroup/cgroup.c cgroup_procs_write_permission(), checked with the credentials of the
opener of the file, `of->file->f_cred`). That is what a delegate is allowed or refused here.

The caller that mounted pseudofs (and root) is privileged, as root is on a real system: without
`--allow-other` only the mounting user can enter the mount, and the daemon lets them do
everything (CAP_DAC_OVERRIDE).
"""

import contextlib
import errno
import os

from pseudofs.errors import ModelError

MAY_WRITE = 0o2


_owner_uid = None          # set while a state file recorded under another owner is replayed


@contextlib.contextmanager
def mount_owner(uid):
    """Decide as if the mount's owner were `uid` (replay of a state file: the outcome of a
    recorded command must not depend on who runs the daemon now)."""
    global _owner_uid
    saved, _owner_uid = _owner_uid, uid
    try:
        yield
    finally:
        _owner_uid = saved


def privileged(caller) -> bool:
    """CAP_DAC_OVERRIDE: root, or the user the daemon runs as (the mount's owner)."""
    owner = os.geteuid() if _owner_uid is None else _owner_uid
    return caller.uid == 0 or caller.uid == owner


def generic_permission(caller, uid: int, gid: int, mode: int, mask: int) -> bool:
    """fs/namei.c generic_permission()/acl_permission_check() for an inode (uid, gid, mode):
    the owner's bits if the caller owns it, else the group's if in its group, else others'.
    Supplementary groups are not known from a FUSE request: only the caller's gid counts."""
    if privileged(caller):
        return True
    if caller.uid == uid:
        bits = mode >> 6
    elif caller.gid == gid:
        bits = mode >> 3
    else:
        bits = mode
    return bits & mask == mask


def cgroup_file_attr(cg, name: str, default_mode: int):
    """(uid, gid, mode) of the file `name` of cgroup `cg`, as the route table reports them."""
    uid, gid = cg.file_owner.get(name, (cg.uid, cg.gid))
    return uid, gid, cg.file_mode.get(name, default_mode)


def _is_descendant(cg, ancestor) -> bool:
    return any(c is ancestor for c in cg.ancestors())


def procs_write_permission(caller, src, dst, procs_mode: int) -> None:
    """cgroup_procs_write_permission(): the opener must be able to write the `cgroup.procs` of
    the common ancestor of `src` (where the process is) and `dst`; else EACCES
    (cgroup_may_write() -> inode_permission(MAY_WRITE))."""
    if privileged(caller):
        return
    com = src
    while not _is_descendant(dst, com):
        com = com.parent
    uid, gid, mode = cgroup_file_attr(com, "cgroup.procs", procs_mode)
    if not generic_permission(caller, uid, gid, mode, MAY_WRITE):
        raise ModelError(errno.EACCES, "no write access to %s/cgroup.procs, the common "
                         "ancestor of %s and %s" % (com.path.rstrip("/"), src.path, dst.path))
