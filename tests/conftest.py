"""Mount fixtures: mount a Tree for real (FUSE), listen to the daemon's logs, unmount.

- `fuse_log`: a `LogWatch` installed for the test. It collects every log record at WARNING or
  above (any logger: ours, fusepy's "fuse"), every record of the "pseudofs" loggers that carries
  a traceback, uncaught thread exceptions and unraisable exceptions (e.g. from a ctypes
  callback). The test FAILS if anything was collected (checked after the test body and again at
  teardown, after the unmount). A test that provokes an error
  on purpose takes it with `fuse_log.pop()` and asserts on it.
- `mount_tree(tree, name="mnt", **serve_options) -> str`: mounts `tree` in a thread of this
  process at tmp_path/name, waits until it is mounted, returns the mountpoint. Teardown: fusermount
  -u (lazy fallback), join the thread with a timeout, then the log check.
- `mounted(config=None, **serve_options) -> str`: the same for the real model (build_model_tree).
"""

import logging
import os
import subprocess
import sys
import threading
import time
import traceback

import pytest

from pseudofs.fs import fuseops

MOUNT_TIMEOUT = 10.0     # seconds until the mount must answer
JOIN_TIMEOUT = 10.0      # seconds for the FUSE loop to end after the unmount


class LogWatch(logging.Handler):
    """Collects what would make a mount test fail; `check()` fails the test if anything came."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(threadName)s]: %(message)s"))
        self.problems = []
        self._records = []
        self._mutex = threading.Lock()
        self._saved = None

    def emit(self, record: logging.LogRecord) -> None:
        own = record.name == "pseudofs" or record.name.startswith("pseudofs.")
        if record.levelno < logging.WARNING and not (own and record.exc_info):
            return
        with self._mutex:
            if any(r is record for r in self._records):   # seen on two loggers we listen to
                return
            self._records.append(record)
        self.add(self.format(record))      # format() appends the traceback, if any

    def add(self, text: str) -> None:
        with self._mutex:
            self.problems.append(text)

    def pop(self) -> list:
        """Take the problems collected so far (for tests that provoke one on purpose)."""
        with self._mutex:
            problems, self.problems = self.problems, []
            return problems

    def check(self) -> None:
        problems = self.pop()
        if problems:
            pytest.fail("the FUSE daemon reported %d problem(s):\n%s"
                        % (len(problems), "\n---\n".join(problems)), pytrace=False)

    def install(self) -> None:
        # The root logger sees everything that propagates; "pseudofs" directly too, in case
        # something (daemon._setup_logging) turned its propagation off.
        for name in (None, "pseudofs"):
            logging.getLogger(name).addHandler(self)
        self._saved = (threading.excepthook, sys.unraisablehook)

        def thread_hook(args):
            self.add("uncaught exception in thread %s:\n%s" % (
                args.thread.name if args.thread else "?",
                "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                   args.exc_traceback))))
        def unraisable_hook(u):
            self.add("unraisable exception (%s):\n%s" % (u.err_msg or "", "".join(
                traceback.format_exception(u.exc_type, u.exc_value, u.exc_traceback))))
        threading.excepthook = thread_hook
        sys.unraisablehook = unraisable_hook

    def uninstall(self) -> None:
        for name in (None, "pseudofs"):
            logging.getLogger(name).removeHandler(self)
        if self._saved:
            threading.excepthook, sys.unraisablehook = self._saved


def _run(*cmd) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class ThreadMount:
    """A Tree served by fuseops.serve() in a thread of the test process."""

    def __init__(self, tree, mountpoint: str, **serve_options):
        self.tree = tree
        self.mountpoint = mountpoint
        self.options = serve_options
        self.error = None
        self.dev = None
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name="fuse:%s" % os.path.basename(mountpoint))

    def _serve(self) -> None:
        try:
            fuseops.serve(self.tree, self.mountpoint, **self.options)
        except BaseException as e:       # reported by start()/stop(), not lost in the thread
            self.error = e

    def start(self, timeout: float = MOUNT_TIMEOUT) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
            if not self.thread.is_alive():
                pytest.fail("mounting %s failed: %r" % (self.mountpoint, self.error), pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("%s not mounted after %g s" % (self.mountpoint, timeout), pytrace=False)
            time.sleep(0.02)
        self.dev = os.stat(self.mountpoint).st_dev

    def stop(self, timeout: float = JOIN_TIMEOUT):
        """Unmount and join; a problem as text, or None."""
        if not self.thread.is_alive():
            return None if self.error is None else "FUSE loop ended with %r" % (self.error,)
        if not _run("fusermount", "-u", self.mountpoint):
            _run("fusermount", "-uz", self.mountpoint) or _run("umount", "-l", self.mountpoint)
        self.thread.join(timeout)
        if self.thread.is_alive() and self.dev is not None:
            # A lazily detached mount lives while files are open: abort the connection
            # (fusectl, if mounted), which ends the FUSE loop.
            abort = "/sys/fs/fuse/connections/%d/abort" % os.minor(self.dev)
            if os.path.exists(abort):
                with open(abort, "w") as f:
                    f.write("1")
                self.thread.join(timeout)
        if self.thread.is_alive():
            return "the FUSE loop of %s did not end within %g s" % (self.mountpoint, timeout)
        if self.error is not None:
            return "FUSE loop of %s ended with %r" % (self.mountpoint, self.error)
        return None


@pytest.hookimpl(wrapper=True)          # new-style wrapper: pluggy >= 1.1 (any pytest 8)
def pytest_runtest_call(item):
    # Check right after the test body, so a logged problem is a test FAILURE, not only an
    # error at teardown; the teardown check still catches what the unmount itself logs.
    result = yield                      # raises if the test failed: then teardown reports
    watch = getattr(item, "funcargs", {}).get("fuse_log")
    if watch is not None:
        watch.check()
    return result


@pytest.fixture
def fuse_log():
    watch = LogWatch()
    watch.install()
    try:
        yield watch
    finally:
        watch.uninstall()
    watch.check()


@pytest.fixture
def mount_tree(tmp_path, fuse_log):
    """Factory: mount_tree(tree, name="mnt", **serve_options) -> mountpoint (str)."""
    mounts = []

    def mount(tree, name: str = "mnt", **serve_options) -> str:
        mnt = tmp_path / name
        mnt.mkdir(exist_ok=True)
        m = ThreadMount(tree, str(mnt), **serve_options)
        mounts.append(m)
        m.start()
        return str(mnt)

    yield mount
    problems = [p for p in (m.stop() for m in reversed(mounts)) if p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ------------------------------------------------------------------------------------------------
# The real Tree from a configuration: `config` is a path to a YAML file, or None for the
# defaults (`mounted` writes YAML text to a file first).
# ------------------------------------------------------------------------------------------------
def build_model_tree(config):
    from pseudofs.fs.routes import build_tree
    from pseudofs.config import load_config
    return build_tree(load_config(config))


@pytest.fixture
def mounted(mount_tree, tmp_path):
    """Factory: mounted(config=None, name="mnt", **serve_options) -> mountpoint of the model."""
    def mount(config=None, name: str = "mnt", **serve_options) -> str:
        if config is not None and not os.path.isfile(str(config)):
            path = tmp_path / ("%s.yaml" % name)
            path.write_text(str(config))
            config = str(path)
        return mount_tree(build_model_tree(config), name=name, **serve_options)
    return mount


# ------------------------------------------------------------------------------------------------
# Golden files (tests/test_golden.py): `pytest --update-golden` rewrites tests/golden/<mode>/.
# ------------------------------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "soak: a long run; `make soak` runs these, `make test` leaves them out")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/<mode>/ from the current renderers")


@pytest.fixture
def sleeper():
    """A live process that lives through the test (to join cgroups with)."""
    p = subprocess.Popen(["sleep", "600"])
    yield p
    p.kill()
    p.wait()


@pytest.fixture
def daemons(tmp_path):
    """pseudofs daemons started as a user would (`pseudofs mount`), all stopped at teardown;
    a daemon that cannot be stopped cleanly fails the test."""
    from daemon_util import Daemons
    d = Daemons(tmp_path)
    yield d
    problems = d.cleanup()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
