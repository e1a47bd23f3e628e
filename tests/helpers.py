"""What many tests need: the common topologies, a walk of a whole mount, one write and its errno.

The worked example of README ("The two accounting modes") is the topology most tests use:
node 0 with CPUs 0-2, node 1 with CPU 3, node 2 with memory only, possible CPUs 0-5 (CPUs 4-5
belong to no node), so P = num_possible_cpus() = 6.
"""

import os
import stat


def three_nodes(memory: str = "4G", node0_memory: str = None) -> str:
    """The `topology:` mapping of the worked example, every node with `memory` (node 0 with
    `node0_memory` if given)."""
    return """topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: %s}
    - {id: 1, cpus: "3", memory: %s}
    - {id: 2, cpus: "", memory: %s}
  possible_cpus: "0-5"
""" % (node0_memory or memory, memory, memory)


def three_node_nodes(memory: str = "1G", node0_memory: str = None) -> str:
    """The same, as the body of a `topology:` mapping (for tests that build the rest)."""
    return three_nodes(memory, node0_memory).split("\n", 1)[1]


def walk(mnt: str, skip=("/proc/self",)) -> dict:
    """Everything a reader sees: {relative path: bytes} for readable files, plus
    {path + "/": (listing)} and {path + "@": (mode, uid, gid, size)} for every entry."""
    out = {}

    def visit(rel):
        full = mnt + rel
        st = os.lstat(full)
        out[rel + "@"] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size)
        if stat.S_ISDIR(st.st_mode):
            names = sorted(os.listdir(full))
            out[rel + "/"] = tuple(names)
            for name in names:
                child = rel + "/" + name
                if not any(child == s or child.startswith(s + "/") for s in skip):
                    visit(child)
        elif st.st_mode & 0o444:
            with open(full, "rb") as f:
                out[rel] = f.read()
    visit("")
    return out


def errno_of(fn, *args) -> int:
    """0 when fn(*args) succeeds, else the errno of its OSError."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def write_errno(path, data: bytes, flags=os.O_WRONLY) -> int:
    """One write(2) on a fresh fd: 0 on success, else the errno (of open or write)."""
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return e.errno
    try:
        os.write(fd, data)
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)
