"""memory.high on percpu charges: nothing is reclaimable, so only MEMCG_HIGH events move
(mm/memcontrol.c: try_charge_memcg marks the task, __mem_cgroup_handle_over_high and
reclaim_high count the events, calculate_high_delay decides how many passes)."""

from pseudofs.boot import build_model
from pseudofs.config import parse_config

CONFIG = """
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 4G}
cgroups:
  - path: /app
    subtree_control: [memory]
  - path: /app/leaf
"""


def model():
    return build_model(parse_config(CONFIG))


def test_a_big_overage_gets_every_retry():
    m = model()
    leaf = m.lookup("/app/leaf")
    m.set_memory_high(leaf, 10)
    m.groups.alloc(64, 1, 8, leaf, None, True)       # one page, a 64-page batch: usage 64
    assert leaf.memcg.memory.usage == 64
    # penalty far above HZ/100: reclaim_high once, then MAX_RECLAIM_RETRIES more passes
    assert leaf.memcg.events_local == {"high": 17}
    assert leaf.memcg.events == {"high": 17}
    assert m.lookup("/app").memcg.events == {"high": 17}     # hierarchical, not local
    assert m.lookup("/app").memcg.events_local == {}


def test_a_small_overage_gets_one_pass():
    m = model()
    memcg = m.lookup("/app/leaf").memcg
    memcg.memory.usage, memcg.memory.high = 1000, 999      # overage 1/999: penalty 0 jiffies
    st = m.kernel.stocks
    st.over_high_pages, st.over_high_memcg = 64, memcg
    st.handle_over_high()
    assert memcg.events_local == {"high": 1}
    assert st.over_high_pages == 0


def test_under_high_counts_nothing():
    m = model()
    leaf = m.lookup("/app/leaf")
    m.set_memory_high(leaf, 1000)
    m.groups.alloc(64, 10, 8, leaf, None, True)
    assert leaf.memcg.events_local == {}
