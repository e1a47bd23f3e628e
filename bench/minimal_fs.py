"""The floor for any Python FUSE daemon here: fusepy serving one fixed file, the way pseudofs
serves its files (direct_io, flush not registered, the same timeouts and thread model).

    python3 bench/minimal_fs.py MNT SIZE [--threads multi|single]
"""

import argparse
import errno
import stat

from fuse import FUSE, FuseOSError


class OneFile:
    """Not an Operations subclass: unregistered callbacks (flush...) answer ENOSYS once."""

    def __init__(self, size: int):
        self.data = (b"x" * 15 + b"\n") * (size // 16) + b"y" * (size % 16)

    def __call__(self, op, *args):
        fn = getattr(self, op, None)
        if fn is None:
            raise FuseOSError(errno.ENOSYS)
        return fn(*args)

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
        if path == "/file":
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": 0}
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", "file"]

    def open(self, path, fi):
        fi.direct_io = 1
        return 0

    def read(self, path, size, offset, fi):
        return self.data[offset:offset + size]

    def release(self, path, fi):
        return 0


if __name__ == "__main__":
    from pseudofs.fs.fuseops import THREADS, THREAD_MODELS, mount_options   # pseudofs's own
    ap = argparse.ArgumentParser()
    ap.add_argument("mountpoint")
    ap.add_argument("size", type=int)
    ap.add_argument("--threads", choices=THREAD_MODELS, default=THREADS)
    args = ap.parse_args()
    opts = mount_options()
    opts["fsname"] = opts["subtype"] = "minimalfs"
    FUSE(OneFile(args.size), args.mountpoint, foreground=True, raw_fi=True,
         nothreads=(args.threads == "single"), **opts)
