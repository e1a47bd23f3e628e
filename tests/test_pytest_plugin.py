"""The pytest plugin (pseudofs/pytest_plugin.py), run the way users run it: pytest's own
`pytester` writes a test file and runs pytest on it in a fresh process; the outcomes and what is
left on the machine afterwards (mounts, daemons, directories) are checked here."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import venv

import pytest

from pseudofs.fs import daemon, supervise

pytest_plugins = ["pytester"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each inner test records its mount here (one JSON line: path, daemon pid).
RECORD = """
import json, os
def record(m):
    with open(os.path.join(os.environ["KIT_RECORD_DIR"], "record.jsonl"), "a") as f:
        f.write(json.dumps([str(m.path), getattr(m, "pid", None)]) + "\\n")
"""


def plugin_args() -> list:
    """Load the plugin: by its entry point once the package is installed with it, else by name
    (a checkout on PYTHONPATH); both ways at once would register it twice."""
    eps = importlib.metadata.entry_points(group="pytest11")
    installed = any(ep.name == "pseudofs" and ep.value == "pseudofs.pytest_plugin" for ep in eps)
    return [] if installed else ["-p", "pseudofs.pytest_plugin"]


@pytest.fixture
def kit(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO] + sys.path))
    monkeypatch.setenv("KIT_RECORD_DIR", str(pytester.path))
    monkeypatch.delenv("FUSE_LIBRARY_PATH", raising=False)
    pytester.makepyfile(kitrecord=RECORD)

    def run(source: str, *args):
        pytester.makepyfile(test_inner=source)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *plugin_args(),
                                             *args, timeout=120)
    run.pytester = pytester
    return run


def recorded(pytester) -> list:
    path = pytester.path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_nothing_left(mounts) -> None:
    assert mounts
    for path, pid in mounts:
        assert daemon.mounted_fstype(path) is None, path
        assert pid is None or supervise.gone(pid), pid
        assert not os.path.exists(path), path


def test_pseudofs_mount_and_the_marker(kit):
    """One inner run (each costs a pytest start): the default mount, the marker's accounting
    and config, static=True where FUSE works (a mount); --strict-markers: it is registered."""
    result = kit("""
        import errno, pytest
        from kitrecord import record
        from pseudofs.testing import Mount

        def test_reads_and_writes(pseudofs_mount):
            m = pseudofs_mount
            record(m)
            assert "nr_percpu" in m.read("proc/vmstat")
            m.mkdir("/t")
            tag = m.alloc(64, count=10, cgroup="/t")
            assert ("tag=%s cgroup=/t" % tag) in m.read("sys/kernel/debug/percpu_test/alloc")
            with pytest.raises(OSError) as e:
                m.mkdir("/t")
            assert e.value.errno == errno.EEXIST
            assert m.check().sound

        def rows(m):
            text = m.read(m.cgroup("/app") / "memory.numa_stat")
            return [line.split()[0] for line in text.splitlines()]

        @pytest.mark.pseudofs(accounting="memcg")
        def test_memcg(pseudofs_mount):
            record(pseudofs_mount)
            assert "percpu" not in rows(pseudofs_mount)

        @pytest.mark.pseudofs(accounting="per-node")
        def test_per_node(pseudofs_mount):
            record(pseudofs_mount)
            assert "percpu" in rows(pseudofs_mount)

        @pytest.mark.pseudofs(config={"cgroups": [{"path": "/mine", "memory.max": "2M"}]})
        def test_config_mapping(pseudofs_mount):
            record(pseudofs_mount)
            m = pseudofs_mount
            assert m.read(m.cgroup("/mine") / "memory.max") == "2097152\\n"

        @pytest.mark.pseudofs(static=True)
        def test_static_mounts_where_fuse_works(pseudofs_mount):
            record(pseudofs_mount)
            assert isinstance(pseudofs_mount, Mount)
    """, "--strict-markers")
    result.assert_outcomes(passed=5)
    assert_nothing_left(recorded(kit.pytester))


def test_cleanup_after_a_failing_test_and_a_killed_daemon(kit):
    result = kit("""
        import os, signal, time
        from kitrecord import record

        def test_fails(pseudofs_mount):
            record(pseudofs_mount)
            assert pseudofs_mount.read("proc/vmstat") == "something else"

        def test_kills_the_daemon(pseudofs_mount):
            record(pseudofs_mount)
            os.kill(pseudofs_mount.pid, signal.SIGKILL)
            time.sleep(0.2)

        def test_factory_mounts_twice_and_fails(pseudofs_factory):
            a = pseudofs_factory(accounting="memcg")
            b = pseudofs_factory()
            record(a)
            record(b)
            assert a.path != b.path
            raise RuntimeError("boom")
    """)
    result.assert_outcomes(passed=1, failed=2)
    mounts = recorded(kit.pytester)
    assert len(mounts) == 4
    assert_nothing_left(mounts)


def test_skipped_without_fuse_unless_static(kit, monkeypatch):
    """FUSE_LIBRARY_PATH is where fusepy loads libfuse from: pointing it at nothing is a
    machine without libfuse for fusepy and for the plugin's probe alike (the daemon could not
    mount either). A static=True test reads the rendered tree instead."""
    monkeypatch.setenv("FUSE_LIBRARY_PATH", "/nonexistent/libfuse.so.2")
    result = kit("""
        import pytest
        from pseudofs.testing import Rendered

        def test_no_fixture():
            import sys
            assert "fuse" not in sys.modules

        def test_needs_a_mount(pseudofs_mount):
            raise AssertionError("not reached")

        def test_factory_needs_a_mount(pseudofs_factory):
            pseudofs_factory()
            raise AssertionError("not reached")

        @pytest.mark.pseudofs(accounting="memcg", static=True)
        def test_static(pseudofs_mount):
            assert isinstance(pseudofs_mount, Rendered)
            assert "percpu" not in pseudofs_mount.read("sys/fs/cgroup/app/memory.numa_stat")
            assert pseudofs_mount.read("proc/vmstat").startswith("nr_free_pages ")
    """)
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines([
        "SKIPPED*pseudofs: FUSE cannot be used here: cannot load libfuse: "
        "/nonexistent/libfuse.so.2*"] * 2)


def test_the_marker_is_listed(pytester):
    result = pytester.runpytest("-p", "no:cacheprovider", *plugin_args(), "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.pseudofs(config=None, version=None, *static=False)*"])


@pytest.mark.soak
def test_an_installed_wheel_exposes_the_plugin(tmp_path):
    """`pip wheel` (not editable) into a fresh virtualenv: its pytest lists the fixtures and
    a test using pseudofs_mount passes there. Needs PyPI (or pip's cache) for pytest, fusepy
    and PyYAML."""
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    src = tmp_path / "src"                 # a copy: the build writes build/ and *.egg-info
    for name in ("pseudofs", "setup.cfg", "pyproject.toml", "README.md"):
        copy = shutil.copytree if os.path.isdir(os.path.join(REPO, name)) else shutil.copy
        copy(os.path.join(REPO, name), src / name,
             **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree
                else {}))
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel",
                    "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300, env=env)
    wheels = list((tmp_path / "dist").glob("pseudofs-*.whl"))
    assert len(wheels) == 1
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    vpy = str(env_dir / "bin" / "python")
    subprocess.run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheels[0]), "pytest"], check=True, capture_output=True, timeout=600,
                   env=env)
    work = tmp_path / "work"
    work.mkdir()
    (work / "test_it.py").write_text(
        "def test_it(pseudofs_mount):\n"
        "    assert pseudofs_mount.read('proc/vmstat').startswith('nr_free_pages ')\n")
    where = subprocess.run([vpy, "-c", "import pseudofs; print(pseudofs.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(env_dir))               # the wheel, not this checkout
    fixtures = subprocess.run([vpy, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert "pseudofs_mount" in fixtures.stdout and "pseudofs_factory" in fixtures.stdout, \
        fixtures.stdout + fixtures.stderr
    run = subprocess.run([vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    print("wheel, venv, install and two pytest runs: %.1f s" % (time.monotonic() - t0))
