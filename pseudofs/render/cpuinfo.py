"""/proc/cpuinfo for x86 (arch/x86/kernel/cpu/proc.c, show_cpuinfo with
show_cpuinfo_core and show_cpuinfo_misc for 64-bit).

One block per ONLINE CPU in CPU order; each block ends with
"power management:" followed by "\\n\\n", i.e. a blank line after every block
(the last one included). Labels and tabs as in the 6.18 sample.

The CPU identity (vendor, model, flags, ...) is the sample VM's, the same for
every CPU. Topology is derived from the model: one package per node
(physical id = node id; a CPU without a node counts as package 0), no SMT;
core id = the CPU's rank among the CPUs of its node in `cpu_to_node`
(stable across hotplug); siblings = cpu cores = the package's online CPUs;
apicid = initial apicid = the CPU number.
"""

#: Line templates of one block, in order (str.format fields).
CPUINFO_LINES = (
    "processor\t: {processor}",
    "vendor_id\t: {vendor_id}",
    "cpu family\t: {cpu_family}",
    "model\t\t: {model}",
    "model name\t: {model_name}",
    "stepping\t: {stepping}",
    "microcode\t: {microcode}",
    "cpu MHz\t\t: {cpu_mhz}",
    "cache size\t: {cache_size}",
    "physical id\t: {physical_id}",
    "siblings\t: {siblings}",
    "core id\t\t: {core_id}",
    "cpu cores\t: {cpu_cores}",
    "apicid\t\t: {apicid}",
    "initial apicid\t: {initial_apicid}",
    "fpu\t\t: yes",
    "fpu_exception\t: yes",
    "cpuid level\t: {cpuid_level}",
    "wp\t\t: yes",
    "flags\t\t: {flags}",
    "bugs\t\t: {bugs}",
    "bogomips\t: {bogomips}",
    "TLB size\t: {tlb_size}",
    "clflush size\t: {clflush_size}",
    "cache_alignment\t: {cache_alignment}",
    "address sizes\t: {address_sizes}",
    "power management:",
)

#: The 6.18 sample VM's CPU (tests/data/samples-linux-6.18/proc/cpuinfo).
X86_SAMPLE_CPU = {
    "vendor_id": "AuthenticAMD",
    "cpu_family": 26,
    "model": 2,
    "model_name": "AMD EPYC",
    "stepping": 1,
    "microcode": "0x1000065",
    "cpu_mhz": "2596.104",
    "cache_size": "1024 KB",
    "cpuid_level": 28,
    "flags": (
        "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat "
        "pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb "
        "rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid "
        "extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 "
        "sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c "
        "rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse "
        "3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep "
        "bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt "
        "clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves "
        "avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip "
        "avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg "
        "avx512_vpopcntdq rdpid fsrm avx512_vp2intersect"),
    "bugs": ("sysret_ss_attrs null_seg spectre_v1 spectre_v2 "
             "spec_store_bypass srso spectre_v2_user"),
    "bogomips": "5192.20",
    "tlb_size": "192 4K pages",
    "clflush_size": 64,
    "cache_alignment": 64,
    "address_sizes": "48 bits physical, 48 bits virtual",
}


def cpu_topology(online_cpus, cpu_to_node):
    """{cpu: {physical_id, core_id, siblings, cpu_cores, apicid,
    initial_apicid}} for the online CPUs (rule in the module docstring)."""
    def pkg(cpu):
        node = cpu_to_node.get(cpu)
        return 0 if node is None else node

    online = sorted(online_cpus)
    known = sorted(set(cpu_to_node) | set(online))
    topo = {}
    for cpu in online:
        p = pkg(cpu)
        same = [c for c in known if pkg(c) == p]
        n_online = sum(1 for c in online if pkg(c) == p)
        topo[cpu] = {"physical_id": p, "core_id": same.index(cpu),
                     "siblings": n_online, "cpu_cores": n_online,
                     "apicid": cpu, "initial_apicid": cpu}
    return topo


def cpuinfo(online_cpus, cpu_to_node, identity=None) -> bytes:
    """/proc/cpuinfo for the online CPUs; `cpu_to_node` maps CPUs (at least
    the online ones; best the present ones) to their node or None."""
    ident = dict(X86_SAMPLE_CPU if identity is None else identity)
    blocks = []
    for cpu, topo in sorted(cpu_topology(online_cpus, cpu_to_node).items()):
        fields = dict(ident, processor=cpu, **topo)
        blocks.append("\n".join(line.format(**fields) for line in CPUINFO_LINES)
                      + "\n\n")
    return "".join(blocks).encode()
