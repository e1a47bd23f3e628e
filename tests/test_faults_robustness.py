"""`pseudofs robustness -- CMD`: one fault-free run and one per class, aimed at CMD's comm."""

import shutil
import subprocess
import sys

import pytest

from pseudofs.faults.classes import CLASSES


def test_robustness_reports_every_class_for_free():
    if shutil.which("free") is None:
        pytest.skip("procps' free is not installed")
    r = subprocess.run([sys.executable, "-m", "pseudofs", "robustness", "--key", "MemFree",
                        "--", "free", "-b"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("fault-free run: exit 0")
    assert "faults aimed at comm 'free'" in lines[1]
    rows = {ln[:18].strip(): ln[18:].split() for ln in lines[3:]}
    assert list(rows) == [c.name for c in CLASSES]
    # free cannot open /proc/meminfo: it says so and exits 1; the model's numbers come back
    # once the plan is cleared, so the next class starts from the same model
    vanished = next(ln for ln in lines if ln.startswith("vanished "))
    assert rows["vanished"][:3] == ["exit", "1", "differs"] and "/proc/meminfo" in vanished
    assert rows["short first read"] == ["exit", "0", "same"]


def test_robustness_needs_a_command():
    r = subprocess.run([sys.executable, "-m", "pseudofs", "robustness"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "no command given" in r.stderr
