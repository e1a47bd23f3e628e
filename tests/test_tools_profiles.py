"""Soak: the real-tool tests (tests/test_tools_*.py: node_exporter, psutil, procps, numastat,
lscpu, the Go probes, ...) rerun on the 5.10, 6.1 and 6.18 profiles. The quick suite runs them
on 7.0 only; here each profile is one pytest run of those files with the scenario's config on
that kernel version (tools/toolkit.py reads PSEUDOFS_TOOL_PROFILE)."""

import glob
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.soak
@pytest.mark.parametrize("version", ["5.10", "6.1", "6.18"])
def test_tool_tests_pass_on_profile(version):
    files = sorted(f for f in glob.glob(os.path.join(HERE, "test_tools_*.py"))
                   if not f.endswith("test_tools_profiles.py"))
    env = dict(os.environ, PSEUDOFS_TOOL_PROFILE=version)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-m", "not soak", *files], cwd=os.path.dirname(HERE), env=env,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
