"""Which kernel filesystem each path that `pseudofs exec` binds stands for, and what statfs(2)
says for it there.

`bound(binds)` is the one place the supervisor learns the bound paths: it takes the
(path, is_dir) pairs `exec` binds, whatever their source.
"""

import os
import struct
from typing import NamedTuple

PROC, SYSFS, CGROUP2, DEBUGFS = "proc", "sysfs", "cgroup2", "debugfs"

# <uapi/linux/magic.h>
MAGIC = {PROC: 0x9fa0, SYSFS: 0x62656572, CGROUP2: 0x63677270, DEBUGFS: 0x64626720}

# Where a real system mounts the filesystem itself (so the mount table shows it there) and the
# options it shows for it: systemd's cgroup2 mount (mount_setup() in src/shared/mount-setup.c
# of systemd: nosuid,nodev,noexec,relatime plus nsdelegate,memory_recursiveprot) and debugfs.
MOUNTED_AT = {"/sys/fs/cgroup": (CGROUP2, "nsdelegate,memory_recursiveprot"),
              "/sys/kernel/debug": (DEBUGFS, "")}

# include/uapi/asm-generic/statfs.h on x86-64: f_type, f_bsize, f_blocks, f_bfree, f_bavail,
# f_files, f_ffree, f_fsid[2], f_namelen, f_frsize, f_flags, f_spare[4]
STATFS = struct.Struct("=qqqqqqqiiqqq4q")
NAME_MAX = 255


class Bound(NamedTuple):
    path: str
    is_dir: bool
    kind: str
    mounted: bool           # the real filesystem is mounted exactly here (cgroup2, debugfs)


def kind_of(path: str) -> str:
    for top, (kind, _) in MOUNTED_AT.items():
        if path == top or path.startswith(top + "/"):
            return kind
    return PROC if path == "/proc" or path.startswith("/proc/") else SYSFS


def bound(binds) -> tuple:
    return tuple(Bound(p, d, kind_of(p), p in MOUNTED_AT) for p, d in binds)


def encode_fsid(dev: int) -> tuple:
    """u64_to_fsid(huge_encode_dev(dev)): what simple_statfs()-based filesystems such as proc
    report (fs/libfs.c)."""
    major, minor = os.major(dev), os.minor(dev)
    v = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)
    return (s32(v & 0xffffffff), s32(v >> 32))


def s32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def statfs_bytes(kind: str, page: int, fsid: tuple, flags: int) -> bytes:
    """struct statfs as simple_statfs() (fs/libfs.c) fills it for proc and kernfs (sysfs,
    cgroup2) and debugfs: the magic, block size the page size, no blocks or files, NAME_MAX;
    then f_frsize = f_bsize (statfs_by_dentry() in fs/statfs.c) and f_flags from the mount
    (calculate_f_flags())."""
    return STATFS.pack(MAGIC[kind], page, 0, 0, 0, 0, 0, fsid[0], fsid[1], NAME_MAX, page,
                       flags, 0, 0, 0, 0)
