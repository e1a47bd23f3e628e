"""`pseudofs exec MNT -- CMD`: the model bound over /proc and /sys for an unmodified CMD, CMD's exit
status passed through, the caller's mount namespace untouched, clear messages when it cannot run."""

import os
import shutil
import signal
import sys
import tempfile
import time

import pytest

from tools.toolkit import CONFIG, need, pseudofs_exec, read, run, scenario

BOUND_FILES = ["proc/vmstat", "proc/meminfo", "proc/stat", "proc/cpuinfo", "proc/cgroups",
               "sys/devices/system/node/node0/meminfo", "sys/devices/system/node/node3/vmstat",
               "sys/devices/system/node/has_memory", "sys/devices/system/cpu/online",
               "sys/devices/system/cpu/kernel_max", "sys/fs/cgroup/cgroup.controllers",
               "sys/fs/cgroup/app/web/memory.numa_stat", "sys/fs/cgroup/app/memory.stat"]


def mountinfo() -> list:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def ours(mnt: str, lines: list) -> list:
    """Mount points in `lines` that show the mount at `mnt` or cover a path `exec` binds."""
    st = os.stat(mnt)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    targets = {"/proc/vmstat", "/proc/meminfo", "/proc/stat", "/proc/cpuinfo", "/proc/cgroups",
               "/sys/devices/system/node", "/sys/devices/system/cpu"}
    return [f[4] for f in (line.split() for line in lines) if f[2] == dev or f[4] in targets]


def test_cmd_reads_the_model_at_the_real_paths(mounted):
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    before = mountinfo()
    r = pseudofs_exec(mnt, sys.executable, "-c", (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    sys.stdout.write('== %s\\n' % p + open('/' + p).read())\n"), *BOUND_FILES)
    expected = "".join("== %s\n%s" % (p, read(mnt, p)) for p in BOUND_FILES)
    assert r.stdout == expected
    assert "nr_percpu" in r.stdout
    # the caller's namespace never saw the binds (other mounts may come and go meanwhile:
    # look at ours only)
    assert ours(mnt, mountinfo()) == ours(mnt, before) == [mnt]


def test_exit_status_is_cmds(mounted):
    mnt = mounted(CONFIG % "memcg")
    assert pseudofs_exec(mnt, "true").returncode == 0
    assert pseudofs_exec(mnt, "sh", "-c", "exit 7", check=False).returncode == 7
    r = pseudofs_exec(mnt, "sh", "-c", "kill -TERM $$", check=False)
    assert r.returncode == -signal.SIGTERM          # the signal itself, as for the bare CMD
    # SIGPIPE is not left ignored for CMD (Python ignores it for itself)
    r = run(["bash", "-c", '"$0" -m pseudofs exec "$1" -- yes | head -1; echo ${PIPESTATUS[0]}',
             sys.executable, mnt])
    assert r.stdout.split() == ["y", str(128 + signal.SIGPIPE)]


def test_own_failures_say_why_without_traceback(mounted, tmp_path):
    mnt = mounted(CONFIG % "per-node")
    r = pseudofs_exec(mnt, "no-such-program-here", check=False)
    assert r.returncode == 127 and "no-such-program-here: command not found" in r.stderr
    r = pseudofs_exec(str(tmp_path), "true", check=False)
    assert r.returncode == 125 and "is not a pseudofs mount" in r.stderr
    r = run([sys.executable, "-m", "pseudofs", "exec", mnt, "--"], check=False)
    assert r.returncode == 2 and "no command given" in r.stderr
    for out in (r.stderr, r.stdout):
        assert "Traceback" not in out


def test_without_privilege_a_clear_message(mounted):
    """In a user namespace that maps nobody, neither a mount namespace nor a nested user
    namespace may be created: `pseudofs exec` says so and exits 125, CMD never runs."""
    (unshare,) = need("util-linux", "unshare")
    mnt = mounted(CONFIG % "per-node")
    probe = run([unshare, "--user", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("this machine allows no user namespaces at all: " + probe.stderr.strip())
    r = run([unshare, "--user", sys.executable, "-m", "pseudofs", "exec", mnt, "--",
             "echo", "ran"], check=False)
    assert r.returncode == 125, r.stderr
    assert "not allowed to create a private mount namespace" in r.stderr
    assert "run it as root" in r.stderr
    assert "Traceback" not in r.stderr and "ran" not in r.stdout


def _copy_package(dest: str) -> None:
    import pseudofs
    shutil.copytree(os.path.dirname(pseudofs.__file__), os.path.join(dest, "pseudofs"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def test_unprivileged_user_gets_a_user_namespace(tmp_path):
    """A non-root caller (here: nobody) runs CMD in a user namespace of its own, as itself.

    Mounted by the daemon (`pseudofs mount --allow-other`) in a folder nobody may enter; the
    pseudofs package is copied there too, run by the system's python3 (nsexec is stdlib only)."""
    (setpriv,) = need("util-linux", "setpriv")
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip("no system python3 that an unprivileged user may run")
    top = tempfile.mkdtemp(prefix="pseudofs-exec-")
    try:
        os.chmod(top, 0o755)
        _copy_package(top)
        mnt = os.path.join(top, "mnt")
        os.mkdir(mnt)
        cfg = tmp_path / "c.yaml"
        cfg.write_text(CONFIG % "per-node")
        run([sys.executable, "-m", "pseudofs", "mount", mnt, "-c", str(cfg), "--allow-other",
             "--log-file", str(tmp_path / "daemon.log")])
        try:
            r = run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                     "--inh-caps=-all", "--", "env", f"PYTHONPATH={top}", python, "-c",
                     "import sys; from pseudofs.fs import nsexec; "
                     "sys.exit(nsexec.run(sys.argv[1], sys.argv[2:]))", mnt, "--",
                     "sh", "-c", "id -u; grep ^nr_percpu /proc/vmstat; exit 3"], check=False)
            if r.returncode == 125 and "not allowed" in r.stderr:
                pytest.skip("unprivileged user namespaces are refused here: " + r.stderr)
            assert r.returncode == 3, r.stderr
            nr_percpu = [line for line in read(mnt, "proc/vmstat").splitlines()
                         if line.startswith("nr_percpu ")]
            assert r.stdout.splitlines() == ["65534"] + nr_percpu
        finally:
            run([sys.executable, "-m", "pseudofs", "umount", mnt], check=False)
            for _ in range(50):
                if not os.path.ismount(mnt):
                    break
                time.sleep(0.1)
    finally:
        shutil.rmtree(top, ignore_errors=True)
