"""`pseudofs exec MNT -- CMD`: run CMD in a private mount namespace where the model's files are
bound over the real /proc and /sys paths, so tools with hard-coded paths read the model."""

import os
import shutil
import subprocess
import sys

BINDS = ("/proc/vmstat", "/proc/meminfo", "/proc/stat", "/proc/cpuinfo", "/proc/cgroups",
         "/sys/devices/system/node", "/sys/devices/system/cpu", "/sys/fs/cgroup")

_SCRIPT = """set -e
mnt=$1; shift
for p in %s; do mount --bind "$mnt$p" "$p"; done
exec "$@"
""" % " ".join(BINDS)


def run(mountpoint: str, command) -> int:
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("pseudofs exec: no command given", file=sys.stderr)
        return 2
    mnt = os.path.abspath(mountpoint)
    if not os.path.isfile(os.path.join(mnt, "proc/vmstat")):
        print(f"pseudofs exec: {mountpoint} is not a pseudofs mount", file=sys.stderr)
        return 2
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("pseudofs exec: needs root (CAP_SYS_ADMIN) and unshare(1) to make a private "
              "mount namespace", file=sys.stderr)
        return 2
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _SCRIPT,
            "pseudofs-exec", mnt] + list(command)
    try:
        return subprocess.call(argv)
    except OSError as e:
        print(f"pseudofs exec: {e}", file=sys.stderr)
        return 127
