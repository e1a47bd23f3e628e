// probe: reads the pseudofs mount with the Go parsers Debian packages, prints JSON.
//
// Built offline by tests/test_tools_go.py in GOPATH mode (GO111MODULE=off, GOPROXY=off) against
// /usr/share/gocode from Debian's golang-github-opencontainers-runc-dev,
// golang-github-containerd-cgroups-dev and golang-github-prometheus-procfs-dev.
//
//	probe runc DIR [testmode]     runc's libcontainer/cgroups/fs2: GetStats() of DIR
//	probe containerd ROOT GROUP   containerd's cgroups/v2: LoadManager(ROOT, GROUP).Stat()
//	probe procfs PROC SYS         prometheus procfs: meminfo, stat, cpuinfo, cgroups; sysfs: node vmstat
package main

import (
	"encoding/json"
	"fmt"
	"os"

	cgroupsv2 "github.com/containerd/cgroups/v2"
	"github.com/opencontainers/runc/libcontainer/cgroups"
	"github.com/opencontainers/runc/libcontainer/cgroups/fs2"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", args...)
	os.Exit(1)
}

func emit(v interface{}) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		fail("%v", err)
	}
}

func deref(p *uint64) interface{} {
	if p == nil {
		return nil
	}
	return *p
}

func runc(dir string, testMode bool) {
	// The mount reports FUSE's statfs magic: outside /sys/fs/cgroup, runc opens cgroup files
	// only after checking for cgroup2's magic, unless its test switch is on.
	cgroups.TestMode = testMode
	m, err := fs2.NewManager(&configs.Cgroup{}, dir)
	if err != nil {
		fail("fs2.NewManager(%s): %v", dir, err)
	}
	st, err := m.GetStats()
	if err != nil {
		fail("GetStats(%s): %v", dir, err)
	}
	emit(map[string]interface{}{
		"unified_mode": cgroups.IsCgroup2UnifiedMode(),
		"stats":        st.MemoryStats.Stats,
		"usage":        st.MemoryStats.Usage.Usage,
		"limit":        st.MemoryStats.Usage.Limit,
		"swap_usage":   st.MemoryStats.SwapUsage.Usage,
	})
}

func containerd(root, group string) {
	m, err := cgroupsv2.LoadManager(root, group)
	if err != nil {
		fail("LoadManager(%s, %s): %v", root, group, err)
	}
	ctrl, err := m.Controllers()
	if err != nil {
		fail("Controllers: %v", err)
	}
	st, err := m.Stat()
	if err != nil {
		fail("Stat: %v", err)
	}
	out := map[string]interface{}{
		"controllers": ctrl,
		"usage":       st.Memory.Usage,
		"usage_limit": st.Memory.UsageLimit,
		"slab":        st.Memory.Slab,
		"swap_usage":  st.Memory.SwapUsage,
	}
	if st.MemoryEvents != nil {
		out["events_max"] = st.MemoryEvents.Max
		out["events_oom"] = st.MemoryEvents.Oom
	}
	emit(out)
}

func promProcfs(proc, sys string) {
	fs, err := procfs.NewFS(proc)
	if err != nil {
		fail("procfs.NewFS(%s): %v", proc, err)
	}
	mi, err := fs.Meminfo()
	if err != nil {
		fail("Meminfo: %v", err)
	}
	stat, err := fs.Stat()
	if err != nil {
		fail("Stat: %v", err)
	}
	cpuinfo, err := fs.CPUInfo()
	if err != nil {
		fail("CPUInfo: %v", err)
	}
	summary, err := fs.CgroupSummarys()
	if err != nil {
		fail("CgroupSummarys: %v", err)
	}
	cgroupsOut := map[string]int{}
	for _, s := range summary {
		cgroupsOut[s.SubsysName] = s.Cgroups
	}
	sfs, err := sysfs.NewFS(sys)
	if err != nil {
		fail("sysfs.NewFS(%s): %v", sys, err)
	}
	numa, err := sfs.VMStatNUMA()
	if err != nil {
		fail("VMStatNUMA: %v", err)
	}
	freePages := map[string]uint64{}
	for node, vm := range numa {
		freePages[fmt.Sprint(node)] = vm.NrFreePages
	}
	cpus, err := sfs.CPUs()
	if err != nil {
		fail("CPUs: %v", err)
	}
	processors := []uint{}
	for _, c := range cpuinfo {
		processors = append(processors, c.Processor)
	}
	emit(map[string]interface{}{
		"mem_total":       deref(mi.MemTotal),
		"mem_free":        deref(mi.MemFree),
		"mem_available":   deref(mi.MemAvailable),
		"swap_total":      deref(mi.SwapTotal),
		"stat_cpus":       len(stat.CPU),
		"processors":      processors,
		"cgroups":         cgroupsOut,
		"node_free_pages": freePages,
		"sysfs_cpus":      len(cpus),
	})
}

func main() {
	a := os.Args[1:]
	switch {
	case len(a) >= 2 && a[0] == "runc":
		runc(a[1], len(a) > 2 && a[2] == "testmode")
	case len(a) == 3 && a[0] == "containerd":
		containerd(a[1], a[2])
	case len(a) == 3 && a[0] == "procfs":
		promProcfs(a[1], a[2])
	default:
		fail("usage: probe runc DIR [testmode] | containerd ROOT GROUP | procfs PROC SYS")
	}
}
