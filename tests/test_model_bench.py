"""`pseudofs bench`: the patch's figures and table from the model (timings are not asserted here;
see the issue note for measured values)."""

from pathlib import Path

from pseudofs import bench
from pseudofs.boot import build_model
from pseudofs.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_seed_config_costs_the_patch_figure():
    # 16 B x 200 possible CPUs x 2 nodes x (root + 49 cgroups) = 320000 B = 312.5 KiB
    cost = bench.counter_cost(build_model(load_config(CONFIGS / "seed-200cpu.yaml")))
    assert cost == {"cpus": 200, "nodes": 2, "memcgs": 50, "bytes": 320000}


def test_main_prints_the_table_and_the_cost(capsys):
    argv = ["-c", str(CONFIGS / "seed-200cpu.yaml"), "--trials", "2", "--count", "300"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "in /seed01, 2 trials per mode" in out
    lines = out.splitlines()
    assert any(line.startswith("batched ") and "+/-" in line and "%" in line for line in lines)
    assert any(line.startswith("interleaved ") for line in lines)
    assert "= 320000 bytes (312.5 KiB)" in out
    assert "unsound" not in out


def test_runs_leave_the_model_as_they_found_it():
    model = build_model(load_config(None))
    cg = bench.pick_cgroup(model, None)
    assert cg.path == "/app"
    before = (cg.memcg.stat("percpu"), model.kernel.pcpu.stats["nr_cur_alloc"])
    for pattern in bench.PATTERNS:
        assert bench.timed((model, cg), pattern, 500, 8, 8) > 0
    assert (cg.memcg.stat("percpu"), model.kernel.pcpu.stats["nr_cur_alloc"]) == before


def test_table_diff_is_per_node_over_memcg():
    times = {"batched": {"memcg": [1.0, 1.0], "per-node": [1.1, 1.1]}}
    row = bench.table(times).splitlines()[-1]
    assert "+10.00%" in row and "+10.00% +/-  0.00" in row
