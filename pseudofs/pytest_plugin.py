"""pytest plugin (entry point `pytest11: pseudofs`, so installing pseudofs enables it).

Fixtures:
- `pseudofs_mount`: a fresh mount of the model for the test (`pseudofs.testing.Mount`),
  configured by the marker `@pytest.mark.pseudofs(config=..., version=..., accounting=...,
  faults=..., static=False)`. Where FUSE cannot be used the test is skipped with the reason;
  with `static=True` it gets the rendered tree there instead (`pseudofs.testing.Rendered`:
  `.path`, `.read`, `.cgroup`, no writes).
- `pseudofs_factory`: `pseudofs_factory(config=None, **mounted_kwargs) -> Mount`, any number of
  mounts, each unmounted (its daemon stopped) after the test.

This module imports neither fusepy nor pseudofs.testing until a fixture is used, so a machine
without libfuse runs its other tests untouched.
"""

import contextlib
import ctypes
import ctypes.util
import importlib.util
import os
from typing import Optional

import pytest

FUSE_DEVICE = "/dev/fuse"
MARKER = ("pseudofs(config=None, version=None, accounting=None, faults=None, static=False): "
          "configure the pseudofs_mount fixture (pseudofs.testing.mounted's arguments); "
          "static=True: a rendered tree where FUSE cannot be used instead of a skip")
_UNASKED = object()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", MARKER)


def fuse_unavailable(device: str = FUSE_DEVICE) -> Optional[str]:
    """Why this process cannot mount pseudofs, or None: the FUSE device (present, openable),
    fusepy, libfuse (what fusepy loads: $FUSE_LIBRARY_PATH or the system's libfuse), and a way
    to mount (root, or fusermount)."""
    if not os.path.exists(device):
        return "no %s on this machine (the fuse kernel module is not loaded, or a container " \
               "without the device)" % device
    try:
        os.close(os.open(device, os.O_RDWR))
    except OSError as e:
        return "cannot open %s: %s" % (device, e.strerror)
    if importlib.util.find_spec("fuse") is None:
        return "fusepy is not installed"
    lib = os.environ.get("FUSE_LIBRARY_PATH") or ctypes.util.find_library("fuse")
    if not lib:
        return "libfuse is not installed (fusepy needs libfuse2: apt-get install libfuse2)"
    try:
        ctypes.CDLL(lib)
    except OSError as e:
        return "cannot load libfuse: %s" % e
    if os.geteuid() != 0 and not any(os.access(os.path.join(d, "fusermount"), os.X_OK)
                                     for d in os.environ.get("PATH", "").split(os.pathsep)):
        return "not root and no fusermount on PATH (apt-get install fuse)"
    return None


def _reason(config) -> Optional[str]:
    """fuse_unavailable(), asked once per session (an attribute of the config, not its
    stash: an older pytest than the project's must still load this plugin)."""
    reason = getattr(config, "_pseudofs_no_fuse", _UNASKED)
    if reason is _UNASKED:
        reason = config._pseudofs_no_fuse = fuse_unavailable(FUSE_DEVICE)
    return reason


def _skip(reason: str):
    pytest.skip("pseudofs: FUSE cannot be used here: %s" % reason)


@pytest.fixture
def pseudofs_factory(request):
    """Call it with pseudofs.testing.mounted()'s arguments; returns the Mount."""
    from pseudofs import testing
    with contextlib.ExitStack() as stack:
        def mount(config=None, **kwargs):
            reason = _reason(request.config)
            if reason:
                _skip(reason)
            return stack.enter_context(testing.mounted(config, **kwargs))
        yield mount


@pytest.fixture
def pseudofs_mount(request):
    """A fresh mount for this test, as the `pseudofs` marker says (default configuration)."""
    from pseudofs import testing
    marker = request.node.get_closest_marker("pseudofs")
    kwargs = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        kwargs.setdefault("config", marker.args[0])
    static = kwargs.pop("static", False)
    reason = _reason(request.config)
    if reason and static:
        kwargs.pop("state", None)
        kwargs.pop("mountpoint", None)
        with testing.rendered(**kwargs) as tree:
            yield tree
        return
    if reason:
        _skip(reason)
    with testing.mounted(**kwargs) as m:
        yield m
