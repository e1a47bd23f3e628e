"""A testing kit for parser authors: the model mounted by a real `pseudofs mount` daemon, or
rendered as plain files, for the length of a `with` block.

    from pseudofs.testing import mounted
    with mounted(accounting="memcg") as m:
        m.mkdir("/app")
        m.write("/sys/fs/cgroup/app/memory.max", "1M")
        m.alloc(64, count=100, cgroup="/app")
        my_parser(m.read("sys/fs/cgroup/app/memory.stat"))
        m.exec(["my-tool"], check=True)       # /proc and /sys paths bound to the model

`config` is a path, YAML text or a dict (default: the built-in configuration); `version`,
`accounting` and `faults` override its `kernel.version`, `kernel.accounting` and `faults:`.
A refused write raises OSError with the kernel's errno, exactly as writing the file does.
Nothing here imports fusepy: the daemon is another process.
"""

import contextlib
import errno
import io
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import yaml

from pseudofs.config_yaml import read_text
from pseudofs.files.table import PERCPU_TEST
from pseudofs.check import CHECK_FILE, Report, parse_report
from pseudofs.errors import ConfigError
from pseudofs.fs import daemon, supervise
from pseudofs.fs.supervise import MountError

__all__ = ["mounted", "rendered", "Mount", "Rendered", "MountError", "ConfigError"]

CGROOT = "sys/fs/cgroup"
CONTROL = PERCPU_TEST


# --- the configuration ---------------------------------------------------------------------

def _is_path(value) -> bool:
    """A PathLike, or a one-line str naming an existing file (else: YAML text or a mapping)."""
    return isinstance(value, os.PathLike) or (isinstance(value, str) and "\n" not in value
                                              and os.path.isfile(value))


def _yaml_of(value, what: str):
    """A path (str naming a file, or PathLike), YAML text or a mapping -> the parsed object."""
    if _is_path(value):
        return yaml.safe_load(read_text(value))
    if isinstance(value, str):
        data = yaml.safe_load(value)
        if data is None or isinstance(data, dict):
            return data
        if "\n" not in value:                      # meant as a file name
            raise FileNotFoundError(errno.ENOENT, "%s: no such file" % what, value)
        raise ValueError("%s: not a file and not a YAML mapping: %.60r" % (what, value))
    return value


def config_file(config=None, workdir: str = ".", *, version=None, accounting=None,
                faults=None) -> Optional[str]:
    """The path to hand to `-c`: `config` itself when it is a file and nothing is overridden,
    None for the built-in configuration, else a config.yaml written in `workdir`."""
    overrides = {k: v for k, v in (("version", version), ("accounting", accounting))
                 if v is not None}
    if faults is None and not overrides:
        if config is None:
            return None
        if _is_path(config):
            return os.fspath(config)
    if config is None:
        from pseudofs.config import DEFAULT_YAML
        config = DEFAULT_YAML
    data = _yaml_of(config, "config") or {}
    if not isinstance(data, dict):
        raise ValueError("config: not a mapping")
    data = dict(data)
    if overrides:
        data["kernel"] = dict(data.get("kernel") or {}, **overrides)
    if faults is not None:
        data["faults"] = _yaml_of(faults, "faults")
    path = os.path.join(workdir, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return path


# --- the trees -----------------------------------------------------------------------------

class Rendered:
    """The tree as plain files under `.path` (no FUSE): read it, nothing more."""

    def __init__(self, path):
        self.path = Path(path)

    def _file(self, relpath) -> Path:
        """A path below the tree as is (`m.cgroup("/app") / "memory.stat"`), else relative to it
        ("proc/vmstat" and "/proc/vmstat" alike)."""
        p = Path(relpath)
        return p if self.path in p.parents else self.path / str(relpath).lstrip("/")

    def cgroup(self, path: str = "/") -> Path:
        """The directory of cgroup `path` ("/app/web")."""
        return self._file(CGROOT) / path.strip("/")

    def read(self, relpath) -> str:
        return self._file(relpath).read_text(encoding="utf-8", errors="surrogateescape")

    def read_bytes(self, relpath) -> bytes:
        return self._file(relpath).read_bytes()


class Mount(Rendered):
    """A live mount. Every method is the file operation a user would do by hand, and fails as
    that operation fails (OSError with the kernel's errno)."""

    def __init__(self, path, pid: int, log_file: str, config: Optional[str]):
        super().__init__(path)
        self.pid = pid               # the daemon's
        self.log_file = log_file
        self.config = config         # the file given to `-c`, None for the built-in one

    def write(self, relpath, data) -> None:
        """One write(2) of `data` (str or bytes) on a fresh descriptor, as `echo > FILE` does."""
        path = self._file(relpath)
        data = data.encode() if isinstance(data, str) else bytes(data)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
        finally:
            os.close(fd)

    def mkdir(self, path: str, mode: int = 0o755) -> Path:
        d = self.cgroup(path)
        os.mkdir(d, mode)
        return d

    def rmdir(self, path: str) -> None:
        os.rmdir(self.cgroup(path))

    def alloc(self, size, count: int = 1, cgroup: str = "/", align=None, tag=None,
              account: bool = True) -> str:
        """Allocate `count` objects of `size` bytes (a number or "4K") charged to `cgroup`;
        returns the group's tag (a fresh unique one unless given)."""
        tag = tag or "kit-" + uuid.uuid4().hex[:12]
        line = "size=%s count=%d cgroup=%s tag=%s account=%d" % (size, count, cgroup, tag,
                                                                 bool(account))
        if align is not None:
            line += " align=%s" % align
        self.write(CONTROL + "/alloc", line)
        return tag

    def free(self, tag=None, *, count=None, cgroup=None, all=False) -> None:
        """`free` with the keys given: tag (and count), cgroup, or all."""
        if tag is None and cgroup is None and not all:
            raise TypeError("free() needs a tag, a cgroup or all=True")
        words = (["all"] if all else []) + ["%s=%s" % (k, v) for k, v in
                                            (("tag", tag), ("count", count), ("cgroup", cgroup))
                                            if v is not None]
        self.write(CONTROL + "/free", " ".join(words))

    def set_faults(self, plan) -> None:
        """Write a fault plan to percpu_test/faults: a mapping (as YAML), YAML text as it is
        (a malformed plan reaches the file's own checks), a path (its content); None clears."""
        if plan is None:
            text = "clear"
        elif isinstance(plan, os.PathLike):
            text = Path(plan).read_text(encoding="utf-8")
        elif isinstance(plan, str):
            text = plan
        else:
            text = yaml.safe_dump(plan, sort_keys=False)
        self.write(CONTROL + "/faults", text)

    def exec(self, argv, **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run(`pseudofs exec MNT -- ARGV`, **kwargs): ARGV sees the model's files at
        their /proc and /sys paths."""
        return subprocess.run(supervise.pseudofs_argv("exec", self.path, "--", *argv), **kwargs)

    def check(self) -> Report:
        """`pseudofs check` of the live model: .findings (kind, where, amount, unit, why),
        .sound, .broken, .checked, .text()."""
        return parse_report(self.read(CHECK_FILE))


# --- the context managers ----------------------------------------------------------------------

def _note(exc: BaseException, problems: List[str]) -> None:
    if hasattr(exc, "add_note"):                 # Python >= 3.11
        exc.add_note("pseudofs cleanup: " + "; ".join(problems))


@contextlib.contextmanager
def mounted(config=None, *, version=None, accounting=None, faults=None, state=None,
            mountpoint=None, timeout: float = supervise.MOUNT_TIMEOUT) -> Iterator[Mount]:
    """Mount the model (at a temporary mountpoint unless `mountpoint` is given) and yield the
    `Mount` once it answers. On exit, also after an exception or a killed daemon: unmount
    (a stale mount cleared), make sure the daemon is gone, check its log for errors, and remove
    what was made. Cleanup problems raise MountError (or are noted on the body's exception)."""
    work = tempfile.mkdtemp(prefix="pseudofs-")
    made = []                                    # what to remove, deepest first
    try:
        cfg = config_file(config, work, version=version, accounting=accounting, faults=faults)
        if mountpoint is None:
            mnt = os.path.join(work, "mnt")
            os.mkdir(mnt)
            made.append(mnt)
        else:
            mnt = os.path.abspath(mountpoint)
            if daemon.mounted_fstype(mnt) is None and not os.path.isdir(mnt):
                os.mkdir(mnt)
                made.append(mnt)
        log_file = os.path.join(work, "daemon.log")
        pid = supervise.start(mnt, log_file, cfg, state=state, timeout=timeout)
        dev = None
        try:
            dev = os.stat(mnt).st_dev
            yield Mount(mnt, pid, log_file, cfg)
        except BaseException as e:
            problems = supervise.stop(mnt, pid, dev)
            if problems:
                _note(e, problems)
            raise
        problems = supervise.stop(mnt, pid, dev) + supervise.log_problems(log_file)
        if problems:
            raise MountError("\n".join(problems))
    finally:
        _remove(work, made)


def _remove(work: str, made: List[str]) -> None:
    """Remove the mountpoints made (never anything below one still mounted) and the work
    directory's own files."""
    for d in reversed(made):
        if daemon.mounted_fstype(d) is None:
            with contextlib.suppress(OSError):
                os.rmdir(d)
    for name in ("config.yaml", "daemon.log"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(work, name))
    with contextlib.suppress(OSError):
        os.rmdir(work)


@contextlib.contextmanager
def rendered(config=None, *, version=None, accounting=None, faults=None) -> Iterator[Rendered]:
    """The tree `pseudofs render` writes, in a temporary directory removed on exit. No FUSE,
    no processes: /proc/self and /proc/PID are absent and /proc/stat's btime is 0."""
    from pseudofs import cli
    work = tempfile.mkdtemp(prefix="pseudofs-render-")
    try:
        cfg = config_file(config, work, version=version, accounting=accounting, faults=faults)
        out = os.path.join(work, "tree")
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            # absolute, as mounted() gives it: percpu_test/check's header names the file
            status = cli.main(["render", out] + (["-c", os.path.abspath(cfg)] if cfg else []))
        if status == 2:
            raise ConfigError(said.getvalue().strip().splitlines())
        if status:
            raise MountError("pseudofs render failed: %s" % said.getvalue().strip())
        yield Rendered(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
