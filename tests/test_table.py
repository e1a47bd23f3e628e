"""The file table walked through a real mount: every row of pseudofs/files/table.py resolves, is
listed by its parent's readdir in the kernel's order, and `pseudofs exec` binds exactly the
table's bind rows."""

import os

from conftest import build_model_tree
from pseudofs.files import kernfs
from pseudofs.files.rows import KERNFS, PROCFS, param_of
from pseudofs.files.table import TABLE_ROWS, exec_binds
from pseudofs.fs import nsexec
from pseudofs.fs.tree import Caller

CONFIG = """
kernel: {config: {PSI: true}, clock: live}    # every row exists: PSI files, uptime
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 1G}
    - {id: 1, cpus: "3", hotplug_cpus: "4", memory: 1G}
    - {id: 2, cpus: "", memory: 1G}
cgroups:
  - path: /app
    subtree_control: [memory]
  - path: /app/web
"""


def test_every_row_resolves_and_is_listed_in_kernel_order(mount_tree, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    routes = build_model_tree(str(cfg))
    mnt = mount_tree(routes)
    reached, orders = set(), {}

    def visit(rel):
        path = rel or "/"
        with routes.lock:                     # which row the mount resolved this path to
            row = routes.resolve(path, Caller(pid=os.getpid()))[0]
        reached.add(row.path)
        if row.is_dir:
            names = os.listdir(mnt + rel)     # readdir through FUSE, in the order it gives
            orders[path] = (row.order, names)
            for name in names:
                visit(rel + "/" + name)

    visit("")
    assert reached == {row.path for row in TABLE_ROWS}
    for path, (order, names) in orders.items():
        if order == KERNFS:
            assert names == kernfs.order(names), path
        elif order == PROCFS:    # proc_match(): by length, then bytes; then self and the pids
            files = [n for n in names if not (n == "self" or n.isdigit())]
            assert names[:len(files)] == sorted(files, key=lambda n: (len(n), n)), path


def test_exec_binds_the_bind_rows_of_the_table():
    assert list(nsexec.BINDS) == exec_binds()
    binds = {path: is_dir for path, is_dir, _ in exec_binds()}
    for row in TABLE_ROWS:
        assert (row.path in binds) == row.bind
        assert not any(param_of(s) for s in row.segments()) or not row.bind, row.path
    assert {"/proc/meminfo", "/sys/fs/cgroup", "/sys/devices/system/node"} <= set(binds)
