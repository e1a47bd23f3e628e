"""pseudofs.testing (the kit for parser authors), `pseudofs run` and `pseudofs check --mount`:
real daemons, real mounts, real commands; what they show is compared with the model's own
renders (`pseudofs render`, `pseudofs check`), never with figures written here."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

from helpers import errno_of
from pseudofs import check
from pseudofs.config import DEFAULT_YAML
from pseudofs.errors import ConfigError
from pseudofs.fs import daemon, supervise
from pseudofs.pytest_plugin import fuse_unavailable
from pseudofs.testing import config_file, mounted, rendered

from daemon_util import REPO
PCT = "sys/kernel/debug/percpu_test"


def pfs(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(supervise.pseudofs_argv(*args), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, **kwargs)


def assert_gone(mnt, pid) -> None:
    """No mount, no daemon, no mountpoint, no work directory left."""
    assert daemon.mounted_fstype(str(mnt)) is None
    assert supervise.gone(pid)
    assert not os.path.exists(mnt)
    assert not os.path.exists(os.path.dirname(mnt))


def test_refused_writes_raise_the_kernels_errno():
    with mounted() as m:
        listing = m.read(PCT + "/alloc")
        m.mkdir("/lim")
        with pytest.raises(OSError) as e:
            m.mkdir("/lim")
        assert e.value.errno == errno.EEXIST
        m.write(m.cgroup("/lim") / "memory.max", "64K")
        with pytest.raises(OSError) as e:                 # try_charge_memcg(): over memory.max
            m.alloc(1024, count=1000, cgroup="/lim")
        assert e.value.errno == errno.ENOMEM
        with pytest.raises(OSError) as e:
            m.alloc(64, cgroup="/nosuch")
        assert e.value.errno == errno.ENOENT
        with pytest.raises(OSError) as e:
            m.free("nosuch-tag")
        assert e.value.errno == errno.ENOENT
        with pytest.raises(OSError) as e:
            m.write(PCT + "/free", "\n")                   # free with no key at all
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            m.free("x", cgroup="/app")                     # two ways at once
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            m.write(m.cgroup("/lim") / "memory.max", "lots")
        assert e.value.errno == errno.EINVAL
        assert m.read(PCT + "/alloc") == listing           # nothing refused changed the model
        assert m.read(m.cgroup("/lim") / "memory.max") == "65536\n"
        with pytest.raises(OSError) as e:
            m.rmdir("/app")                                # it has children
        assert e.value.errno == errno.EBUSY
        m.rmdir("/lim")
        assert not m.cgroup("/lim").exists()


def test_alloc_free_and_the_listing():
    with mounted() as m:
        m.mkdir("/svc")
        before = m.read(m.cgroup("/svc") / "memory.stat")
        tag = m.alloc(64, count=10, cgroup="/svc", align=64)
        given = m.alloc(8, count=3, cgroup="/svc", tag="mine", account=False)
        assert given == "mine"
        lines = m.read(PCT + "/alloc").splitlines()
        assert "tag=%s cgroup=/svc size=64 align=64 count=10 account=1" % tag in lines
        assert "tag=mine cgroup=/svc size=8 align=8 count=3 account=0" in lines
        assert m.read(m.cgroup("/svc") / "memory.stat") != before
        m.free(tag, count=4)
        assert "tag=%s cgroup=/svc size=64 align=64 count=6 account=1" % tag in \
            m.read(PCT + "/alloc").splitlines()
        m.free(cgroup="/svc")
        assert "cgroup=/svc" not in m.read(PCT + "/alloc")
        assert m.read(m.cgroup("/svc") / "memory.stat") != before   # stocks keep pages
        m.free(all=True)
        assert m.read(PCT + "/alloc") == ""


def test_check_file_is_pseudofs_check(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(DEFAULT_YAML)
    offline = pfs("check", "-c", cfg)
    assert offline.returncode == 0, offline.stderr
    with mounted(str(cfg)) as m:
        st = os.stat(m.path / PCT / "check")
        assert oct(st.st_mode & 0o7777) == oct(0o400)
        text = m.read(PCT + "/check")
        assert text == offline.stdout                    # the same model, the same report
        live = pfs("check", "--mount", m.path)
        assert (live.returncode, live.stdout) == (0, text)
        rep = m.check()
        assert rep.sound and rep.text() == text and rep.checked > 0
        assert rep.findings == check.parse_report(offline.stdout).findings
        m.mkdir("/new")
        m.alloc(64, count=50, cgroup="/new")
        after = m.check()
        assert after.text() == m.read(PCT + "/check") != text     # the live model, re-read
        assert any(f.where.startswith("/new ") for f in after.findings)
        with pytest.raises(OSError) as e:
            m.write(PCT + "/check", "x")
        assert e.value.errno == errno.EACCES
    assert pfs("check", "--mount", tmp_path).returncode == 2    # no mount there


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_parse_report_inverts_text(mode):
    from pseudofs.boot import build_model
    from pseudofs.config import parse_config
    model = build_model(parse_config(DEFAULT_YAML.replace("accounting: per-node",
                                                          "accounting: " + mode)))
    rep = check.check(model)
    assert rep.findings                                   # the default config has some
    assert check.parse_report(rep.text()) == rep
    broken = check.Report("h", [check.Finding("nr-units", "Percpu:", -3, "kB", "x: y")],
                          ["a: b", "c"], 7)
    assert check.parse_report(broken.text()) == broken and not broken.sound
    empty = check.Report("h", checked=2)
    assert check.parse_report(empty.text()) == empty
    for bad in ("", "h\n", rep.text()[:-1], rep.text().replace("sound: all", "sound: some"),
                broken.text().replace("2 of 7", "3 of 7")):
        with pytest.raises(ValueError):
            check.parse_report(bad)


def test_cleanup_after_an_exception():
    with pytest.raises(KeyError):
        with mounted() as m:
            mnt, pid = m.path, m.pid
            assert daemon.mounted_fstype(str(mnt)) == daemon.FSTYPE
            raise KeyError("the test failed")
    assert_gone(mnt, pid)


def test_cleanup_after_the_daemon_was_killed():
    with mounted() as m:
        mnt, pid = m.path, m.pid
        os.kill(pid, signal.SIGKILL)
        supervise._wait_gone(pid, 10)
        with pytest.raises(OSError) as e:
            os.stat(mnt / "proc")
        assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    assert_gone(mnt, pid)


def test_cleanup_of_a_busy_mount():
    """A file left open keeps a lazily detached mount alive: the daemon is still stopped."""
    try:
        with mounted() as m:
            mnt, pid = m.path, m.pid
            held = open(m.path / "proc/vmstat")
            os.chdir(m.path)
        assert_gone(mnt, pid)
        with pytest.raises(OSError) as e:
            held.read()
        assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    finally:
        os.chdir(REPO)
        held.close()


def test_given_mountpoint(tmp_path):
    new = tmp_path / "new"
    with mounted(mountpoint=new) as m:
        assert m.path == new and m.read("proc/vmstat")
    assert not new.exists() and daemon.mounted_fstype(str(new)) is None
    kept = tmp_path / "kept"
    kept.mkdir()
    with mounted(mountpoint=str(kept)) as m:
        assert m.path == kept
    assert kept.is_dir() and daemon.mounted_fstype(str(kept)) is None


def test_state_survives_the_next_mount(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with mounted(state="state.log") as m:                 # relative to the caller's cwd
        m.mkdir("/kept")
        tag = m.alloc(64, count=5, cgroup="/kept")
        listing = m.read(PCT + "/alloc")
    with mounted(state="state.log") as m:
        assert m.read(PCT + "/alloc") == listing and ("tag=%s " % tag) in listing
        assert m.cgroup("/kept").is_dir()


def test_config_forms(tmp_path):
    mapping = yaml.safe_load(DEFAULT_YAML)
    mapping["cgroups"] = [{"path": "/only", "memory.max": "1M"}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(mapping))
    for config in (mapping, yaml.safe_dump(mapping), str(path), path):
        with rendered(config) as r:
            assert sorted(p.name for p in r.cgroup("/").iterdir() if p.is_dir()) == ["only"]
            assert r.read(r.cgroup("/only") / "memory.max") == "1048576\n"
    with pytest.raises(ConfigError) as e:
        with mounted({"kernel": {"accounting": "sideways"}}):
            pass
    assert "accounting" in str(e.value)
    with pytest.raises(FileNotFoundError):
        with rendered(str(tmp_path / "missing.yaml")):
            pass


def test_overrides_reach_the_yaml(tmp_path):
    """The overrides are written into the config's keys (a mount of them: below)."""
    path = config_file(None, str(tmp_path), version="6.1", accounting="memcg",
                       faults={"seed": 3, "rules": []})
    data = yaml.safe_load(open(path))
    assert data["kernel"]["version"] == "6.1" and data["kernel"]["accounting"] == "memcg"
    assert data["kernel"]["page_size"] == yaml.safe_load(DEFAULT_YAML)["kernel"]["page_size"]
    assert data["faults"] == {"seed": 3, "rules": []}
    assert config_file(str(path), str(tmp_path)) == str(path)      # nothing to override
    assert config_file(None, str(tmp_path)) is None                 # the built-in one


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_accounting_override(mode):
    with rendered(accounting=mode) as r:
        keys = [line.split()[0] for line in r.read(r.cgroup("/app") / "memory.numa_stat")
                .splitlines()]
        assert ("percpu" in keys) == (mode == "per-node")


def _files(root: str) -> dict:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root)] = f.read()
    return out


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_rendered_is_byte_identical_to_the_mount(tmp_path, mode):
    # the mode in the file, not as an override: percpu_test/check's header names the config
    # file, and an override writes a file of its own in each temporary directory
    cfg = tmp_path / "c.yaml"
    # frozen: a mount's clock is live by default, and a rendered tree is a snapshot
    cfg.write_text(DEFAULT_YAML.replace("accounting: per-node",
                                        "accounting: %s\n  clock: frozen" % mode))
    with rendered(str(cfg)) as r, mounted(str(cfg)) as m:
        files = _files(str(r.path))
        assert len(files) > 100 and PCT + "/check" in files
        differ = [p for p, data in files.items() if (m.path / p).read_bytes() != data]
        # the one difference: the mount's /proc/stat has the host's boot time (the real
        # /proc/PID/stat start times count from it), a rendered tree has no processes: 0
        assert differ == ["proc/stat"]
        mine = (m.path / "proc/stat").read_bytes().splitlines()
        static = files["proc/stat"].splitlines()
        assert [i for i, (a, b) in enumerate(zip(mine, static)) if a != b] == \
            [static.index(b"btime 0")]
        # and the mount has nothing the render lacks but /proc/self and /proc/PID
        for dirpath, dirs, names in os.walk(m.path):
            rel = os.path.relpath(dirpath, m.path)
            if rel == "proc":
                dirs[:] = []
            for name in names:
                assert os.path.normpath(os.path.join(rel, name)) in files \
                    or not os.stat(os.path.join(dirpath, name)).st_mode & 0o444   # write-only


def test_exec_binds_the_model():
    with mounted(accounting="memcg") as m:
        p = m.exec(["cat", "/proc/vmstat", "/sys/fs/cgroup/app/memory.numa_stat"],
                   capture_output=True)
        assert p.returncode == 0, p.stderr
        assert p.stdout == m.read_bytes("proc/vmstat") + m.read_bytes(
            m.cgroup("/app") / "memory.numa_stat")
        assert m.exec(["sh", "-c", "exit 9"]).returncode == 9


def test_pseudofs_run_passes_the_status_through(tmp_path):
    out = tmp_path / "out"
    script = 'echo "$PSEUDOFS_MNT" > %s.mnt; cat /proc/vmstat > %s; exit 3' % (out, out)
    r = pfs("run", "--", "sh", "-c", script)
    assert r.returncode == 3, r.stderr
    with rendered() as tree:
        assert out.read_bytes() == tree.read_bytes("proc/vmstat")
    mnt = (tmp_path / "out.mnt").read_text().strip()
    assert mnt and daemon.mounted_fstype(mnt) is None and not os.path.exists(mnt)
    ok = pfs("run", "--accounting", "memcg", "--", "grep", "-q", "^percpu ",
             "/sys/fs/cgroup/app/memory.numa_stat")
    assert ok.returncode == 1, ok.stderr               # grep found no percpu row
    assert pfs("run", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    bad = pfs("run", "-c", tmp_path / "missing.yaml", "--", "true")
    assert bad.returncode == 125 and "missing.yaml" in bad.stderr


def test_the_kit_imports_no_libfuse():
    """Installing pseudofs never breaks a pytest run on a machine without libfuse."""
    env = dict(os.environ, FUSE_LIBRARY_PATH="/nonexistent/libfuse.so.2",
               PYTHONPATH=os.pathsep.join([REPO] + sys.path))
    code = textwrap.dedent("""
        import sys
        import pseudofs.pytest_plugin, pseudofs.testing, pseudofs.run
        assert "fuse" not in sys.modules, "fusepy was imported"
        print(pseudofs.pytest_plugin.fuse_unavailable())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("cannot load libfuse: /nonexistent/libfuse.so.2")


def test_fuse_probe(tmp_path):
    assert fuse_unavailable() is None                # this machine mounts (the suite needs it)
    assert fuse_unavailable(str(tmp_path / "fuse")).startswith("no %s" % (tmp_path / "fuse"))


def test_version_and_faults_overrides_and_set_faults_reach_the_mount():
    plan = {"seed": 1, "rules": [{"path": "proc/vmstat", "errno": "EIO"}]}
    with mounted(version="6.1", faults=plan) as m:
        assert m.read("proc/sys/kernel/osrelease").startswith("6.1.")
        shown = yaml.safe_load(m.read(PCT + "/faults"))
        assert shown["seed"] == 1 and shown["rules"][0]["errno"] == "EIO"
        assert errno_of(m.read, "proc/vmstat") == errno.EIO
        m.set_faults({"seed": 2, "rules": [{"path": "proc/meminfo", "errno": "EAGAIN"}]})
        assert yaml.safe_load(m.read(PCT + "/faults"))["seed"] == 2
        m.read("proc/vmstat")                          # the new plan replaced the old
        with pytest.raises(OSError) as e:
            m.set_faults("seed: 2\nrules: [oops\n")   # refused with the kernel's errno
        assert e.value.errno == errno.EINVAL
        assert yaml.safe_load(m.read(PCT + "/faults"))["seed"] == 2     # the live plan kept
        m.set_faults(None)
        assert m.read(PCT + "/faults") == ""
