# pseudofs: make run | make stop | make test | make soak | make robustness | make bench |
# make clean
#
# `make run` and `make test` install what is missing first: Debian's fuse and libfuse2 (and
# python3-venv) through apt-get when run as root, then a virtualenv in .venv with the package
# (`pip install -e '.[test,plot]'`, redone only when setup.cfg or pyproject.toml change).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CONFIG ?= configs/default.yaml
MNT ?= mnt
PYTHON ?= python3

VENV := .venv
VPY := $(VENV)/bin/python
PSEUDOFS := $(VENV)/bin/pseudofs
STAMP := $(VENV)/.installed

# Extra arguments for pytest, e.g. `make test PYTEST_ARGS=--update-golden`.
PYTEST_ARGS ?=
# Example scripts `make test` runs after the suite (*.py with the venv's python, others with
# bash; the venv's bin first on PATH); each must exit 0.
EXAMPLES := examples/percpu-per-node.sh examples/check_cgroup_parser.py
# Example test files `make test` runs with pytest (through the installed pseudofs plugin).
EXAMPLE_TESTS := examples/test_parser_pytest.py
# What the real-tool tests (tests/test_tools_*.py) run: Debian packages (installed by `make test`
# when root and missing, and by .ci/run) and PyPI packages (installed into the venv). Without
# them, those tests skip locally and fail under CI=true.
TOOLS_APT := prometheus-node-exporter numactl procps util-linux tmux sysstat golang-go \
	golang-github-opencontainers-runc-dev golang-github-containerd-cgroups-dev \
	golang-github-prometheus-procfs-dev cgroup-tools systemd
TOOLS_PIP := psutil
# Arguments for `pseudofs bench`, e.g. `make bench BENCH_ARGS="-c configs/seed-200cpu.yaml"`.
BENCH_ARGS ?=
# Scripts under bench/ that `make bench` runs after `pseudofs bench`, the same way.
BENCH_SCRIPTS := bench/readbench.py bench/scale.py bench/execbench.py
# The C daemon bench/readbench.py measures pseudofs against (installed by `make bench` as root).
BENCH_APT := lxcfs

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Prints the fstype of the topmost mount at $(MNT) ("" when nothing is mounted there). Reads
# /proc/self/mountinfo rather than stat()ing $(MNT), which fails on a stale FUSE mount.
MNT_FSTYPE = d="$$(cd "$$(dirname '$(MNT)')" 2>/dev/null && pwd -P)" || exit 0; \
	m="$${d%/}/$$(basename '$(MNT)')"; \
	awk -v m="$$m" '{ t = ""; for (i = 7; i <= NF; i++) if ($$i == "-") { t = $$(i + 1); break } } \
	$$5 == m { f = t } END { print f }' /proc/self/mountinfo

# Installs the Debian packages $(1) that are missing, as root with apt-get ($(2): who needs
# them); otherwise names them ($(3): what happens without them) and goes on.
define apt_tools
	@need=""; \
	for p in $(1); do \
	  dpkg-query -W -f '$${Status}\n' "$$p" 2>/dev/null | grep -q 'ok installed' || need="$$need $$p"; \
	done; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing what $(2):$$need"; \
	    apt-get update; \
	    apt-get install -y --no-install-recommends$$need; \
	  else \
	    echo "not installed:$$need ($(3); as root: apt-get install$$need)" >&2; \
	  fi; \
	fi
endef

# Runs each script of $(1) (*.py with the venv's python, others with bash).
define run_scripts
	@for s in $(1); do \
	  echo "== $$s"; \
	  case "$$s" in \
	    *.py) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VPY) "$$s" ;; \
	    *) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash "$$s" ;; \
	  esac; \
	done
endef

.PHONY: help run stop test soak bench clean install deps tools

help:
	@echo "make run     install what is missing, mount $(CONFIG) at ./$(MNT)"
	@echo "make stop    unmount ./$(MNT)"
	@echo "make test    install what is missing, run the test suite (the quick runs)"
	@echo "make soak    the long runs: 10,000 fuzzed writes, 30 s of concurrent writers, ..."
	@echo "make robustness  real readers against every fault class: docs/robustness.md"
	@echo "make bench   run the benchmarks, figures into bench/README.md (BENCH_ARGS=...)"
	@echo "make clean   remove .venv and build artefacts"

# System packages: fusermount and libfuse.so.2 (fusepy loads it), python3 with venv support.
# Installed with apt-get when root; otherwise the missing ones are named and make stops. Never
# installs `fuse` over fuse3 (it would remove fuse3 and what depends on it).
deps:
	@need=""; \
	if ! command -v $(PYTHON) >/dev/null 2>&1; then \
	  need="$$need python3 python3-venv"; \
	elif ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  need="$$need python3-venv"; \
	fi; \
	if ! command -v fusermount >/dev/null 2>&1 && command -v fusermount3 >/dev/null 2>&1; then \
	  echo "fusermount is missing, fusermount3 is there: Debian's fuse package would replace fuse3;" \
	       "link it instead: ln -s $$(command -v fusermount3) /usr/local/bin/fusermount" >&2; \
	  exit 1; \
	elif ! command -v fusermount >/dev/null 2>&1; then \
	  need="$$need fuse libfuse2"; \
	elif [ -z "$${FUSE_LIBRARY_PATH:-}" ] && command -v $(PYTHON) >/dev/null 2>&1 && \
	     ! $(PYTHON) -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("fuse") is None)'; then \
	  need="$$need libfuse2"; \
	fi; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$need"; \
	    apt-get update; \
	    apt-get install -y$$need; \
	  else \
	    echo "missing:$$need; install them as root (Debian: apt-get install$$need)" >&2; \
	    exit 1; \
	  fi; \
	fi

$(VPY): | deps
	@echo "creating $(VENV)"
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(STAMP): setup.cfg pyproject.toml | deps $(VPY)
	$(VPY) -m pip install -e '.[test,plot]'
	@touch $@

install: deps $(STAMP)

# The real tools of tests/test_tools_*.py. As root with apt-get, installs the missing Debian
# packages; otherwise names them (those tests then skip, unless CI is set). PyPI ones go into
# the venv (pip contacts no index when they are there already).
tools: install
	$(call apt_tools,$(TOOLS_APT),the tool tests run,the tool tests skip without them)
	$(VPY) -m pip install -q $(TOOLS_PIP)

run: install
	@fstype="$$($(MNT_FSTYPE))"; \
	if [ "$$fstype" = fuse.pseudofs ] && ls $(MNT)/proc >/dev/null 2>&1; then \
	  echo "$(MNT) is already mounted (make stop, then make run, to mount it afresh)"; \
	elif [ -n "$$fstype" ] && [ "$$fstype" != fuse.pseudofs ]; then \
	  echo "$(MNT): something else is mounted there ($$fstype)" >&2; exit 1; \
	else \
	  [ -n "$$fstype" ] || mkdir -p $(MNT); \
	  $(PSEUDOFS) mount $(MNT) -c $(CONFIG); \
	fi
	@echo
	@echo "pseudofs: $(CONFIG) is mounted at ./$(MNT). Try:"
	@echo "  cat $(MNT)/proc/vmstat | grep nr_percpu"
	@echo "  cat $(MNT)/sys/fs/cgroup/memory.numa_stat"
	@echo "  mkdir $(MNT)/sys/fs/cgroup/app2"
	@echo '  echo "size=64 count=1000 cgroup=/app2" > $(MNT)/sys/kernel/debug/percpu_test/alloc'
	@echo "  cat $(MNT)/sys/fs/cgroup/app2/memory.numa_stat"
	@echo "  grep nr_percpu $(MNT)/sys/devices/system/node/node*/vmstat"
	@echo "  cat $(MNT)/sys/kernel/debug/percpu_stats"
	@echo "Stop it with: make stop"

stop:
	@fstype="$$($(MNT_FSTYPE))"; \
	if [ -z "$$fstype" ]; then \
	  echo "$(MNT) is not mounted"; \
	elif [ -x $(PSEUDOFS) ]; then \
	  $(PSEUDOFS) umount $(MNT) && echo "$(MNT) unmounted"; \
	else \
	  { fusermount -u $(MNT) || fusermount -uz $(MNT); } && echo "$(MNT) unmounted"; \
	fi

# pytest exits 5 when it collects no test: both targets fail then, loudly.
test: install tools
	$(VPY) -m pytest -q -p no:cacheprovider -m "not soak" tests $(PYTEST_ARGS)
	$(call run_scripts,$(EXAMPLES))
	@echo "== $(EXAMPLE_TESTS)"
	$(VPY) -m pytest -q -p no:cacheprovider $(EXAMPLE_TESTS)

soak: install tools
	$(VPY) -m pytest -q -p no:cacheprovider -m soak tests $(PYTEST_ARGS)

# The output of the benchmarks is also written into bench/README.md's figures section.
bench: install
	$(call apt_tools,$(BENCH_APT),bench/readbench.py compares with,LXCFS is then not measured)
	@out="$$(mktemp)"; trap 'rm -f "$$out"' EXIT; \
	{ echo "== pseudofs bench $(BENCH_ARGS)"; $(VPY) -m pseudofs bench $(BENCH_ARGS); \
	  for s in $(BENCH_SCRIPTS); do echo "== $$s"; PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VPY) "$$s"; done; \
	} 2>&1 | tee "$$out"; \
	$(VPY) bench/update_readme.py "$$out" && echo "bench/README.md: figures updated"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find $(wildcard pseudofs tests bench examples) -name __pycache__ -type d -prune -exec rm -rf {} +
	@fstype="$$($(MNT_FSTYPE))"; \
	if [ -n "$$fstype" ]; then \
	  echo "$(MNT) is mounted: kept (make stop unmounts it)"; \
	elif [ -d $(MNT) ]; then \
	  rmdir $(MNT) 2>/dev/null || echo "$(MNT) is not empty: kept"; \
	fi

# `make robustness`: the real readers of the tool tests (installed by `make tools`) against every
# fault class of docs/faults.md, judged against the model; writes docs/robustness.md.
.PHONY: robustness
robustness: install tools
	PYTHONPATH="$(CURDIR)" $(VPY) tests/tools/robustness_table.py --out docs/robustness.md
