# The two commands of the README:
#   make run   set everything up, record 10 s with every module, print the report
#   make test  set everything up, run the whole test suite
# Both work on a fresh Debian/Ubuntu machine as root (system packages are
# installed when missing); elsewhere install the packages listed in README.md.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DURATION ?= 10

# Debian/Ubuntu packages: BCC's Python binding and tools, kernel headers
# (any recent version works: see README), and the workloads/peers the
# tests and benchmarks use.
APT_PACKAGES := python3-bpfcc bpfcc-tools bpftool stress-ng rt-tests linux-perf trace-cmd jq fio iproute2 python3-venv

.PHONY: run test setup system venv bytecode bench clean

run: setup
	@$(VENV)/bin/latencyscope --duration $(DURATION) || { rc=$$?; [ $$rc -le 2 ] && echo "(exit $$rc is the verdict: 1 warnings, 2 violations)"; [ $$rc -le 2 ]; }

test: setup
	$(PY) -m pytest -ra tests

bench: setup
	$(PY) benchmarks/run.py

setup: system venv bytecode

system:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "note: not root: skipping system packages (see README for your distro)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  missing=""; \
	  for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ ! -d /lib/modules/$$(uname -r)/build ] && ! ls -d /usr/src/linux-headers-* >/dev/null 2>&1; then \
	    missing="$$missing HEADERS"; fi; \
	  if [ -n "$$missing" ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q; \
	    hdr=linux-headers-$$(uname -r); \
	    apt-cache show $$hdr >/dev/null 2>&1 || hdr=linux-headers-$$(dpkg --print-architecture); \
	    apt-get install -y -q $$(echo $$missing | sed "s/HEADERS/$$hdr/") ; \
	  fi; \
	else \
	  echo "note: no apt-get: install BCC, kernel headers and the tools listed in README.md yourself"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Bytecode of our own packages, brought up to date on every make (the venv is
# an editable install): where .pyc files are not written (PYTHONDONTWRITEBYTECODE)
# every analyzer run would otherwise compile what changed since, 30-70 ms.
bytecode: venv
	@$(PY) -m compileall -q latencyscope record analyze schemas bpf >/dev/null 2>&1 || \
	  echo "note: bytecode not written (a tree this user cannot write?): the analyzer compiles at each start"

clean:
	rm -rf $(VENV) build *.egg-info
