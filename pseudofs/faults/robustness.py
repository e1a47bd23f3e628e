"""`pseudofs robustness [-c CONFIG] [--path GLOB ...] [--key KEY] -- CMD [ARGS]`: mount the
model, run CMD through `pseudofs exec` once without faults and once per fault class (aimed at
CMD's own comm, so nothing else is hit), and print per class CMD's exit status or signal,
whether its stdout differs from the fault-free run, and the tail of its stderr.

The helpers (mount, load, run, run_class) also serve the table of real readers that
`make robustness` writes (tests/tools/robustness_table.py)."""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator, List, Optional

from pseudofs.errors import ConfigError
from pseudofs.faults.classes import CLASSES, FaultClass, Target, plan_text
from pseudofs.faults.engine import CONTROL
from pseudofs.fs.supervise import MountError

CTL = CONTROL
TIMEOUT = 60


@contextlib.contextmanager
def mount(config: Optional[str] = None) -> Iterator[str]:
    """The mountpoint of a pseudofs daemon (pseudofs.testing.mounted: waits until it answers,
    and unmounts, stops the daemon and removes what it made, whatever happens)."""
    from pseudofs.testing import mounted
    with mounted(config) as m:
        yield str(m.path)


def write_once(mnt: str, rel: str, text: str) -> None:
    """One write(2) of `text`, as a shell's echo makes it."""
    fd = os.open(os.path.join(mnt, rel), os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def load(mnt: str, plan: Optional[str]) -> None:
    write_once(mnt, CTL + "faults", plan if plan else "clear\n")


@dataclass
class Outcome:
    status: str                 # "exit N", "signal NAME", "timeout"
    code: Optional[int]         # the exit status, None after a signal or a timeout
    stdout: str
    stderr: str

    def stderr_tail(self, width: int = 100) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        tail = lines[-1] if lines else ""
        return tail if len(tail) <= width else tail[:width - 3] + "..."


def run(argv: List[str], timeout: float = TIMEOUT, **kw) -> Outcome:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                           timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return Outcome("timeout", None, out or "", err or "")
    if r.returncode < 0:
        return Outcome("signal " + signal.Signals(-r.returncode).name, None, r.stdout, r.stderr)
    return Outcome("exit %d" % r.returncode, r.returncode, r.stdout, r.stderr)


def run_class(mnt: str, cls: Optional[FaultClass], target: Target, call,
              after=None) -> Optional[Outcome]:
    """`call()` (which runs the reader) under the class's plan; None when the class does not
    apply to the target. `after()`, if given, runs once the plan is cleared, before a torn
    class's allocations (made in target.torn_cgroup, for the run) are freed again."""
    plan = plan_text(cls, target) if cls is not None else None
    if cls is not None and plan is None:
        return None
    cg = os.path.join(mnt, "sys/fs/cgroup", target.torn_cgroup.lstrip("/"))
    if cls is not None and cls.torn:
        os.mkdir(cg)
    try:
        load(mnt, plan)
        try:
            outcome = call()
        finally:
            load(mnt, None)
        if after is not None:
            after()
        return outcome
    finally:
        if cls is not None and cls.torn:
            write_once(mnt, CTL + "free", "cgroup=%s\n" % target.torn_cgroup)
            os.rmdir(cg)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="pseudofs robustness",
        description="Run CMD through `pseudofs exec` without faults, then once per fault "
                    "class aimed at CMD's comm; print what each class did to it.")
    p.add_argument("-c", "--config", help="YAML configuration (default: the built-in one)")
    p.add_argument("--path", action="append", metavar="GLOB",
                   help="files to fault, relative to the mount root (default: **, all)")
    p.add_argument("--key", help="a key CMD parses (the classes that edit one value need it; "
                                 "without it they replace whole files)")
    p.add_argument("--comm", help="the comm to aim at (default: CMD's name, 15 characters)")
    p.add_argument("--timeout", type=float, default=TIMEOUT)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS]")
    a = p.parse_args(argv)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        p.error("no command given")
    comm = (a.comm or os.path.basename(cmd[0]))[:15]
    target = Target(tuple(a.path or ["**"]), comm, a.key)
    try:
        with mount(a.config) as mnt:
            call = lambda: run([sys.executable, "-m", "pseudofs", "exec", mnt, "--", *cmd],  # noqa
                               a.timeout)
            base = run_class(mnt, None, target, call)
            print("fault-free run: %s, %d bytes of stdout%s" % (
                base.status, len(base.stdout),
                ("; stderr: " + base.stderr_tail()) if base.stderr.strip() else ""))
            print("faults aimed at comm %r, files %s%s" % (
                comm, " ".join(target.files), (", key " + a.key) if a.key else ""))
            print("%-18s %-14s %-8s %s" % ("class", "status", "stdout", "stderr (last line)"))
            for cls in CLASSES:
                o = run_class(mnt, cls, target, call)
                if o is None:
                    print("%-18s %s" % (cls.name, "n/a (needs --key)"))
                    continue
                same = "same" if o.stdout == base.stdout else "differs"
                print("%-18s %-14s %-8s %s" % (cls.name, o.status, same, o.stderr_tail()))
    except (ConfigError, MountError) as e:
        print("pseudofs robustness: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
