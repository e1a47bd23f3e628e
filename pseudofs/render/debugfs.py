"""debugfs files: the allocator's percpu_stats and our percpu_test/alloc listing."""

from pseudofs.render.percpu_stats import percpu_stats as _percpu_stats


def percpu_stats(model) -> bytes:
    pcpu = model.kernel.pcpu
    info = pcpu.info
    alloc_info = {"unit_size": info.unit_size, "static_size": info.static_size,
                  "reserved_size": info.reserved_size, "dyn_size": info.dyn_size,
                  "atom_size": info.atom_size, "alloc_size": info.alloc_size}
    stats = dict(pcpu.stats, empty_pop_pages=pcpu.nr_empty_pop_pages)
    return _percpu_stats(alloc_info, stats, pcpu.chunk_listing())


def alloc_listing(model) -> bytes:
    return "".join("tag=%(tag)s cgroup=%(cgroup)s size=%(size)d align=%(align)d "
                   "count=%(count)d account=%(account)d\n" % g
                   for g in model.groups.listing()).encode()
