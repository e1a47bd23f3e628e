// unified: what runc's and containerd's cgroup libraries conclude about the machine they run on,
// used as a new user would, with no test switch: the cgroup mode from statfs(2) of
// /sys/fs/cgroup, then a manager of runc's choice for each GROUP and its GetStats().
//
// Built offline by tests/test_exec_supervisor.py like ../probe (GOPATH mode against Debian's
// golang-github-opencontainers-runc-dev and golang-github-containerd-cgroups-dev).
//
//	unified GROUP...      e.g. unified / /app /app/web
package main

import (
	"encoding/json"
	"fmt"
	"os"

	containerd "github.com/containerd/cgroups"
	"github.com/opencontainers/runc/libcontainer/cgroups"
	"github.com/opencontainers/runc/libcontainer/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer/configs"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "unified: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	modes := map[containerd.CGMode]string{containerd.Unavailable: "Unavailable",
		containerd.Legacy: "Legacy", containerd.Hybrid: "Hybrid", containerd.Unified: "Unified"}
	groups := map[string]interface{}{}
	for _, path := range os.Args[1:] {
		m, err := manager.New(&configs.Cgroup{Path: path, Resources: &configs.Resources{}})
		if err != nil {
			fail("manager.New(%s): %v", path, err)
		}
		st, err := m.GetStats()
		if err != nil {
			fail("GetStats(%s): %v", path, err)
		}
		groups[path] = map[string]interface{}{
			"usage": st.MemoryStats.Usage.Usage,
			"limit": st.MemoryStats.Usage.Limit,
			"stats": st.MemoryStats.Stats,
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	err := enc.Encode(map[string]interface{}{
		"unified_mode":    cgroups.IsCgroup2UnifiedMode(),
		"containerd_mode": modes[containerd.Mode()],
		"groups":          groups,
	})
	if err != nil {
		fail("%v", err)
	}
}
