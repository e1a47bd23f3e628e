#!/usr/bin/env bash
# A shell test of per-node percpu accounting, written the way you would test your own scripts
# against pseudofs: mount a configuration, create cgroups, join one, allocate, check the per-node
# numbers with grep and awk, unmount. It prints one line per check and exits 1 on any mismatch.
#
#   bash examples/percpu-per-node.sh        # needs `pseudofs` on PATH and FUSE (make test runs it)
set -euo pipefail

work=$(mktemp -d)
mnt=$work/mnt
mkdir "$mnt"
cleanup() {
  if mountpoint -q "$mnt"; then pseudofs umount "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# README's worked example: node 0 has CPUs 0-2, node 1 CPU 3, node 2 memory only; CPUs 4-5 are
# possible but belong to no node.
cat > "$work/config.yaml" <<'YAML'
kernel: {accounting: per-node}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 4G}
    - {id: 1, cpus: "3", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}
  possible_cpus: "0-5"
YAML
pseudofs mount "$mnt" -c "$work/config.yaml"

cg=$mnt/sys/fs/cgroup
ctl=$mnt/sys/kernel/debug/percpu_test
node=$mnt/sys/devices/system/node
failed=0
check() {   # check WHAT GOT WANT
  if [ "$2" = "$3" ]; then
    echo "ok   $1 = $2"
  else
    echo "FAIL $1: got '$2', want '$3'"
    failed=1
  fi
}
# numa VALUE of KEY in a memory.numa_stat file: numa FILE KEY NODE
numa() { awk -v k="$2" -v n="N$3" '$1 == k { for (i = 2; i <= NF; i++) { split($i, a, "=");
                                              if (a[1] == n) print a[2] } }' "$1"; }
# value of KEY in a flat "key value" file: stat FILE KEY
kv() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# CPUs in a cpulist ("0-2,4"): count LIST
count() { awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { if (split($i, r, "-") == 2)
                     n += r[2] - r[1] + 1; else if ($i != "") n++ } print n }' <<<"$1"; }

# 1. cgroups: /app with the memory controller for its child, and this shell joins /app/worker
mkdir "$cg/app"
echo "+memory" > "$cg/app/cgroup.subtree_control"
mkdir "$cg/app/worker"
echo $$ > "$cg/app/worker/cgroup.procs"
check "worker's controllers" "$(cat "$cg/app/worker/cgroup.controllers")" "memory"

# 2. allocate without naming a cgroup: the writer (this shell) is in /app/worker
size=64 count=100
echo "size=$size count=$count tag=mine" > "$ctl/alloc"
check "the group's cgroup" "$(grep -o 'tag=mine cgroup=[^ ]*' "$ctl/alloc")" \
      "tag=mine cgroup=/app/worker"

# 3. what the patch charges per node: count * (n*S + mult_frac(2S, n, P))
P=$(count "$(cat "$mnt/sys/devices/system/cpu/possible")")
mult_frac() { echo $(( ($1 / $3) * $2 + (($1 % $3) * $2) / $3 )); }
total=0
for n in 0 1 2; do
  cpus=$(count "$(cat "$node/node$n/cpulist")")
  want=0
  if [ "$cpus" -gt 0 ]; then
    want=$(( count * (cpus * size + $(mult_frac $((2 * size)) "$cpus" "$P")) ))
  fi
  total=$(( total + want ))
  check "worker percpu N$n" "$(numa "$cg/app/worker/memory.numa_stat" percpu $n)" "$want"
done
check "worker memory.stat percpu" "$(kv "$cg/app/worker/memory.stat" percpu)" "$total"
check "README's numbers" "$(grep '^percpu' "$cg/app/worker/memory.numa_stat")" \
      "percpu N0=25600 N1=8500 N2=0"

# 4. the page counter is charged whole pages; /app sees its child's charge (hierarchical)
current=$(cat "$cg/app/worker/memory.current")
check "memory.current is whole pages" "$(( current % 4096 ))" 0
[ "$(kv "$cg/app/memory.stat" percpu)" -ge "$total" ] && echo "ok   /app includes /app/worker" \
  || { echo "FAIL /app's percpu is below its child's"; failed=1; }

# 5. per-node vmstat adds up to /proc/vmstat; node 0 has 3 online CPUs, node 1 one
sum=$(awk '$1 == "nr_percpu" { s += $2 } END { print s }' "$node"/node*/vmstat)
check "sum of node nr_percpu" "$sum" "$(kv "$mnt/proc/vmstat" nr_percpu)"
check "node0 = 3 x node1" "$(kv "$node/node0/vmstat" nr_percpu)" \
      "$(( 3 * $(kv "$node/node1/vmstat" nr_percpu) ))"

# 6. free it all: the cgroup's per-node percpu returns to 0
echo "cgroup=/app/worker" > "$ctl/free"
check "after free" "$(grep '^percpu' "$cg/app/worker/memory.numa_stat")" "percpu N0=0 N1=0 N2=0"

# 7. leave, remove, unmount (the trap unmounts on any exit)
echo $$ > "$cg/cgroup.procs"
rmdir "$cg/app/worker" "$cg/app"
pseudofs umount "$mnt"

if [ "$failed" != 0 ]; then
  echo "percpu-per-node.sh: FAILED"
  exit 1
fi
echo "percpu-per-node.sh: all checks passed"
