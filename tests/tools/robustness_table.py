"""`make robustness`: the real readers of the tool tests against every fault class, each class
aimed at the files that reader parses (and at its comm, so nothing else is hit), judged
against the model; writes docs/robustness.md.

    python3 tests/tools/robustness_table.py [--out docs/robustness.md] [--only NAME ...]

Judgement, per reader and class, in this order:
  crash   killed by a signal, a Go panic, an uncaught Python exception other than OSError
          (a parser breaking, not a library passing an errno on), or no answer in time
  right   its values equal the model's (for a torn read: each value lies between the model's
          just before and just after the run, a state the model passed through, since the torn
          commands only allocate); a message on the side is noted
  error   a nonzero exit, or exit 0 with a report: stderr lines the fault-free run did not
          print, node_exporter's scrape_collector_success 0, numastat's "Token ... not in
          hash table" lines beyond the fault-free run's
  WRONG   exit 0, no report, and a value that is not the model's (or missing)
The model's values are read from the mount with no plan live, right before each run.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pseudofs.faults.classes import CLASSES, Target          # noqa: E402
from pseudofs.faults.robustness import Outcome, mount, run, run_class   # noqa: E402
from tools.toolkit import (CONFIG, cpulist, free_port, kv, meminfo, read,   # noqa: E402
                           scenario)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOCODE = "/usr/share/gocode/src"
PY = sys.executable
RUN_TIMEOUT = 20        # seconds: a reader still busy then has hung (a loop on a huge value)


def exec_argv(mnt, *cmd):
    return [PY, "-m", "pseudofs", "exec", mnt, "--", *cmd]


def mi(mnt):
    return meminfo(read(mnt, "proc/meminfo"))


# --- the readers --------------------------------------------------------------------------------
class Reader:
    """name, the files it parses (globs), the key a value class edits, its comm, how to run it
    (argv or a function of the mount), what it reported (values) and what the model says."""

    def __init__(self, name, files, key, comm, argv, values, model, vendor_line,
                 reported=None, note=""):
        self.name, self.files, self.key, self.comm = name, files, key, comm
        self.argv, self.values, self.model = argv, values, model
        self.vendor_line = vendor_line
        self.reported = reported or (lambda o, base: bool(new_lines(o.stderr, base.stderr)))
        self.note = note

    def target(self):
        return Target(self.files, self.comm, self.key, self.vendor_line,
                      "/app/pseudofs-torn" if self.files[0].startswith("sys/fs/cgroup/app")
                      else "/pseudofs-torn")


def new_lines(text, base):
    return [ln for ln in text.splitlines() if ln.strip() and ln not in set(base.splitlines())]


PSUTIL = r"""
import ctypes, json, sys
ctypes.CDLL(None).prctl(15, b"psutil-reader", 0, 0, 0)     # PR_SET_NAME: the comm aimed at
import psutil
psutil.PROCFS_PATH = sys.argv[1]
try:
    vm = psutil.virtual_memory()
except OSError as e:
    sys.exit("psutil: %s" % e)
print(json.dumps({"total": vm.total, "free": vm.free, "available": vm.available,
                  "buffers": vm.buffers}))
"""


def psutil_model(mnt):
    m = mi(mnt)
    return {"total": m["MemTotal"] * 1024, "free": m["MemFree"] * 1024,
            "available": m["MemAvailable"] * 1024, "buffers": m["Buffers"] * 1024}


def free_values(out):
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("Mem:"))
    return {"total": int(row[1]), "free": int(row[3]), "available": int(row[6])}


def free_model(mnt):
    m = mi(mnt)
    return {"total": m["MemTotal"] * 1024, "free": m["MemFree"] * 1024,
            "available": m["MemAvailable"] * 1024}


def vmstat_values(out):
    got = {}
    for ln in out.splitlines():
        mt = re.match(r"\s*(\d+) K (total memory|free memory|buffer memory)$", ln)
        if mt:
            got[mt.group(2)] = int(mt.group(1))
    return got


def vmstat_model(mnt):
    m = mi(mnt)
    return {"total memory": m["MemTotal"], "free memory": m["MemFree"],
            "buffer memory": m["Buffers"]}


def numastat_values(out):
    got = {}
    for ln in out.splitlines():
        w = ln.split()
        if w and w[0] in ("MemTotal", "MemFree"):
            got[w[0]] = [round(float(x), 2) for x in w[1:-1]]
    return got


def numastat_model(mnt):
    ids = cpulist(read(mnt, "sys/devices/system/node/online"))
    per = [meminfo(read(mnt, "sys/devices/system/node/node%d/meminfo" % n)) for n in ids]
    return {k: [round(p[k] / 1024, 2) for p in per] for k in ("MemTotal", "MemFree")}


def numastat_reported(o, base):
    tokens = lambda text: [ln for ln in text.splitlines() if ln.startswith("Token ")]  # noqa
    return len(tokens(o.stdout)) > len(tokens(base.stdout)) or bool(new_lines(o.stderr,
                                                                            base.stderr))


def lscpu_values(out):
    f = {d["field"].rstrip(":"): d["data"] for d in json.loads(out)["lscpu"]}
    return {"CPU(s)": int(f["CPU(s)"]), "On-line CPU(s) list": cpulist(f["On-line CPU(s) list"])}


def lscpu_model(mnt):
    return {"CPU(s)": len(cpulist(read(mnt, "sys/devices/system/cpu/present"))),
            "On-line CPU(s) list": cpulist(read(mnt, "sys/devices/system/cpu/online"))}


def node_exporter(mnt):
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [binary, "--web.listen-address=127.0.0.1:%d" % port, "--path.procfs=%s/proc" % mnt,
         "--path.sysfs=%s/sys" % mnt, "--path.rootfs=%s" % mnt, "--collector.disable-defaults",
         "--collector.meminfo"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    text, deadline = None, time.monotonic() + 20
    try:
        while proc.poll() is None and time.monotonic() < deadline and text is None:
            try:
                with opener.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.1)
        time.sleep(0.05)
    finally:
        died = proc.poll()
        proc.terminate()
        proc.wait(10)
        log.seek(0)
        err = log.read().decode(errors="replace")
    if text is None:
        code = died if died is not None else proc.returncode
        status = "exit %d" % code if code >= 0 else "timeout"
        return Outcome(status, code if code >= 0 else None, "", err)
    return Outcome("exit 0", 0, text, err)


def ne_values(text):
    got = {}
    for ln in text.splitlines():
        for k in ("MemTotal", "MemFree", "MemAvailable"):
            if ln.startswith("node_memory_%s_bytes " % k):
                got[k] = float(ln.split()[1])
    return got


def ne_model(mnt):
    m = mi(mnt)
    return {k: float(m[k] * 1024) for k in ("MemTotal", "MemFree", "MemAvailable")}


def ne_reported(o, base):
    return ('node_scrape_collector_success{collector="meminfo"} 0' in o.stdout
            or "level=error" in o.stderr)


def go_probe(tmp):
    """The probe of tests/test_tools_go.py, built offline in GOPATH mode."""
    out = os.path.join(tmp, "go")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=os.path.dirname(GOCODE), GOPROXY="off",
               GOFLAGS="", GOENV="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOCACHE=os.path.join(out, "cache"), HOME=out)
    binary = os.path.join(out, "probe")
    subprocess.run(["go", "build", "-o", binary, "."], cwd=os.path.join(HERE, "go", "probe"),
                   env=env, check=True, capture_output=True)
    return binary


def cg_model(mnt, stat_key):
    st = kv(read(mnt, "sys/fs/cgroup/app/memory.stat"))
    mx = read(mnt, "sys/fs/cgroup/app/memory.max").strip()
    return {"usage": int(read(mnt, "sys/fs/cgroup/app/memory.current")),
            "limit": 2**64 - 1 if mx == "max" else int(mx), stat_key: st[stat_key]}


CG_FILES = ("sys/fs/cgroup/app/memory.stat", "sys/fs/cgroup/app/memory.current",
            "sys/fs/cgroup/app/memory.max")
MEMINFO_LINE = "VendorReserved:    4096 kB"
MEMSTAT_LINE = "Anon: 4096 kB"           # runc#3643: a foreign `Anon: N kB` line


def readers(probe):
    mem = ("proc/meminfo",)
    return [
        Reader("psutil", mem, "MemFree", "psutil-reader",
               lambda m: [PY, "-c", PSUTIL, m + "/proc"], json.loads, psutil_model, MEMINFO_LINE),
        Reader("procps free", mem, "MemFree", "free", lambda m: exec_argv(m, "free", "-b"),
               free_values, free_model, MEMINFO_LINE),
        Reader("procps vmstat", mem + ("proc/stat", "proc/vmstat"), "MemFree", "vmstat",
               lambda m: exec_argv(m, "vmstat", "-s"), vmstat_values, vmstat_model,
               MEMINFO_LINE),
        Reader("numastat", ("sys/devices/system/node/node*/meminfo",), "MemFree", "numastat",
               lambda m: exec_argv(m, "numastat", "-m"), numastat_values, numastat_model,
               "Node 0 VendorReserved:    4096 kB", numastat_reported),
        Reader("lscpu", ("sys/devices/system/cpu/online", "sys/devices/system/cpu/present",
                         "sys/devices/system/cpu/possible"), None, "lscpu",
               lambda m: ["lscpu", "--sysroot", m, "-J"], lscpu_values, lscpu_model, ""),
        Reader("node_exporter", mem, "MemFree", "prometheus-node", node_exporter, ne_values,
               ne_model, MEMINFO_LINE, ne_reported),
        Reader("runc fs2", CG_FILES, "percpu", "probe",
               lambda m: [probe, "runc", m + "/sys/fs/cgroup/app", "testmode"],
               lambda out: (lambda j: {"usage": j["usage"], "limit": j["limit"],
                                       "percpu": j["stats"].get("percpu")})(json.loads(out)),
               lambda m: cg_model(m, "percpu"), MEMSTAT_LINE),
        Reader("containerd cgroups v2", CG_FILES[1:], None, "probe",
               lambda m: [probe, "containerd", m + "/sys/fs/cgroup", "/app"],
               lambda out: (lambda j: {"usage": j["usage"], "limit": j["usage_limit"]})(
                   json.loads(out)),
               lambda m: {k: v for k, v in cg_model(m, "anon").items() if k != "anon"}, "",
               note="aimed at memory.current and memory.max only: of memory.stat, containerd "
                    "reports fields the model leaves at 0 in /app (anon, file, slab ...), and a "
                    "0 cannot tell a value parsed right from one parsed as 0"),
        Reader("prometheus procfs", mem, "MemFree", "probe",
               lambda m: [probe, "procfs", m + "/proc", m + "/sys"],
               lambda out: (lambda j: {"MemTotal": j["mem_total"], "MemFree": j["mem_free"],
                                       "MemAvailable": j["mem_available"]})(json.loads(out)),
               lambda m: {k: mi(m)[k] for k in ("MemTotal", "MemFree", "MemAvailable")},
               MEMINFO_LINE),
    ]


# --- judging ------------------------------------------------------------------------------------
def crashed(o):
    if o.status == "timeout":
        return "no answer within %d s" % RUN_TIMEOUT
    if o.code is None:
        return o.status
    if re.search(r"^panic: |^goroutine \d+ \[", o.stderr, re.M):
        return "Go panic: " + next(ln for ln in o.stderr.splitlines() if ln.startswith("panic"))
    tb = re.search(r"^Traceback \(most recent call last\):", o.stderr, re.M)
    if tb:
        last = o.stderr.strip().splitlines()[-1]
        if not re.match(r"(\w+\.)*(OSError|\w*Error: \[Errno)", last) or "ValueError" in last:
            return "uncaught " + last
    return None


def between(got, a, b):
    """A value of a state the model passed through during a torn run: the commands only
    allocate, so each value moves one way, from `a` (before) to `b` (after)."""
    if isinstance(a, list):
        return isinstance(got, list) and len(got) == len(a) and all(
            between(g, x, y) for g, x, y in zip(got, a, b))
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    return min(a, b) <= got <= max(a, b)


def judge(reader, o, base, want, want_after, mnt):
    """(verdict, detail)."""
    # the mount's temporary path, log timestamps and durations out, so the table is the same
    # run to run
    err = re.sub(r'(?m)^(ts=\S+ |time="[^"]*" )', "", o.stderr.replace(mnt, "MNT"))
    err = re.sub(r"duration_seconds=\S+ ", "", err)     # node_exporter's timings vary too
    o = Outcome(o.status, o.code, o.stdout, err)
    c = crashed(o)
    if c:
        return "crash", c
    try:
        got = reader.values(o.stdout) or None
    except Exception:            # no output, or not what the reader prints when it works
        got = None
    reported = o.code != 0 or reader.reported(o, base)
    if got is not None:
        ok = all(got.get(k) == want[k] or (want_after is not None and
                                           between(got.get(k), want[k], want_after[k]))
                 for k in want)
        if ok:
            return "right", ("(reported: %s)" % o.stderr_tail(100)) if reported and \
                o.stderr.strip() else ""
    if reported:
        return "error", o.stderr_tail(120) or "(%s)" % o.status
    if got is None:
        last = [ln.strip() for ln in o.stdout.splitlines() if ln.strip()]
        return "WRONG", "no values and no error%s" % (
            (", stdout ends: " + last[-1][:70]) if last else ", no output")
    bad = [k for k in want if got.get(k) != want[k]]
    return "WRONG", "; ".join("%s %s (model %s)" % (k, got.get(k), want[k]) for k in bad[:2])


def call_of(reader, mnt):
    if callable(reader.argv) and reader.argv.__name__ == "node_exporter":
        return lambda: reader.argv(mnt)
    return lambda: run(reader.argv(mnt), timeout=RUN_TIMEOUT)


def measure(reader, mnt):
    rows = []
    t = reader.target()
    base = run_class(mnt, None, t, call_of(reader, mnt))
    want = reader.model(mnt)
    verdict, detail = judge(reader, base, base, want, None, mnt)
    rows.append(("fault-free", verdict, detail, base.status))
    for cls in CLASSES:
        want = reader.model(mnt)
        after = []
        o = run_class(mnt, cls, t, call_of(reader, mnt),
                      after=lambda: after.append(reader.model(mnt)))
        if o is None:
            rows.append((cls.name, "n/a", "", ""))
            continue
        verdict, detail = judge(reader, o, base, want, after[0] if cls.torn else None, mnt)
        rows.append((cls.name, verdict, detail, o.status))
        print("  %-22s %-18s %-6s %s" % (reader.name, cls.name, verdict, detail), flush=True)
    return rows


def markdown(results):
    classes = ["fault-free"] + [c.name for c in CLASSES]
    what = {c.name: c.what for c in CLASSES}
    names = list(results)
    out = ["# Robustness of real readers against pseudofs fault classes", "",
           "Written by `make robustness` (tests/tools/robustness_table.py): each reader of the "
           "tool tests reads the tool tests' model (tests/tools/toolkit.py: CONFIG and scenario) "
           "once without faults and once per fault class, the class aimed at the files that "
           "reader parses and at its comm. Verdicts are judged against the model's own values "
           "(read from the mount with no plan, before each run): **right** (the model's "
           "values), **error** (a nonzero exit or an error reported), **crash** (signal, Go panic, "
           "uncaught parser exception), **WRONG** (exit 0, no word, values not the model's). "
           "In the value classes (literal max, 2^64-1, negative, page-rounded max) the file "
           "itself holds the odd value: WRONG there means the reader passed an impossible value "
           "on, or made 0 of it, without a word; error means it refused the file. A torn read "
           "is right when each value lies between the model's before and after the run. "
           "docs/faults.md gives the public bug each class mirrors.", "",
           "| class | " + " | ".join(names) + " |",
           "|---|" + "---|" * len(names)]
    for c in classes:
        cells = [results[n][c][0] for n in names]
        out.append("| %s | %s |" % (c, " | ".join("**%s**" % x if x in ("WRONG", "crash")
                                                  else x for x in cells)))
    out += ["", "## Classes", ""]
    out += ["- **%s**: %s" % (c.name, what[c.name]) for c in CLASSES]
    out += ["", "## Details", "",
            "What each reader said or returned where it was not simply right (exit status, "
            "the last line of stderr, or the first values that differ from the model's).", ""]
    for n in names:
        files = results[n]["_files"]
        out.append("### %s (comm %s; faults on %s; key %s)" % (
            n, results[n]["_comm"], ", ".join(files), results[n]["_key"] or "none"))
        out.append("")
        if results[n]["_note"]:
            out += [results[n]["_note"] + ".", ""]
        for c in classes:
            verdict, detail, status = results[n][c]
            if verdict not in ("right", "n/a") or detail:
                out.append("- %s: %s, %s%s" % (c, verdict, status,
                                               (": " + detail.replace("|", "\\|")) if detail
                                               else ""))
        out.append("")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "robustness.md"))
    p.add_argument("--only", action="append", help="run only these readers (by name)")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="robustness-")
    try:
        probe = go_probe(tmp)
        cfg = os.path.join(tmp, "config.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG % "per-node")
        results = {}
        with mount(cfg) as mnt:
            scenario(mnt)
            for reader in readers(probe):
                if a.only and reader.name not in a.only:
                    continue
                rows = measure(reader, mnt)
                results[reader.name] = {c: (v, d, s) for c, v, d, s in rows}
                results[reader.name]["_files"] = reader.files
                results[reader.name]["_comm"] = reader.comm
                results[reader.name]["_key"] = reader.key
                results[reader.name]["_note"] = reader.note
        with open(a.out, "w") as f:
            f.write(markdown(results) + "\n")
        print("wrote", a.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # without faults every reader must read the model right, or the table says nothing
    wrong = [name for name, rows in results.items() if rows["fault-free"][0] != "right"]
    if wrong:
        print("robustness: without faults, %s did not read the model right" % ", ".join(wrong),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
