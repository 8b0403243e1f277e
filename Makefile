# elfcost: `make run` analyses a binary every Linux machine has; `make test` runs the tests.
# Both set up what they need (a local .venv; Debian packages when run as root).

# The distribution's python3 when there is one (/usr/bin/python3 on Debian): the interpreter
# elfcost's users there run it with, and the one lddtree (bench/estimate's peer) runs on. An
# interpreter earlier on PATH (pyenv's, say) may be built without optimisation and start slower.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV := .venv
PY := $(VENV)/bin/python
BIN ?= /bin/sleep
SAMPLES := build/samples
APT_PACKAGES := gcc make musl-tools pax-utils libtree gcc-multilib busybox-static s6 curl \
  libllvm14 chromium dpkg-dev debhelper fakeroot build-essential qemu-user smem
# Architectures whose Debian packages the tests download (apt-get download NAME:ARCH): the
# sysroots of other machines, and the archives scanned as one root.
FOREIGN_ARCHES := arm64 armhf ppc64el s390x i386

.PHONY: install run test lint samples bench clean deps-apt fuzz fuzz-channels schemas \
  install-debhelper

$(PY): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "installing python3-venv (apt-get)"; apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $(PY)

install: $(PY)

run: install
	$(VENV)/bin/elfcost $(BIN) --instances 129

# dh_elfcost and its sequence add-on where debhelper looks by default (as root), so that
# `dh $@ --with elfcost` works without `eval "$$(elfcost debhelper-env)"`. dh_elfcost then runs
# `elfcost` from PATH, or the command in $$ELFCOST. DESTDIR stages the files instead.
DH_BINDIR ?= /usr/local/bin
DH_PERL5DIR ?= /usr/share/perl5
DH_SRC := src/elfcost/debhelper

install-debhelper:
	install -D -m 755 $(DH_SRC)/dh_elfcost $(DESTDIR)$(DH_BINDIR)/dh_elfcost
	install -D -m 644 $(DH_SRC)/Debian/Debhelper/Sequence/elfcost.pm \
	  $(DESTDIR)$(DH_PERL5DIR)/Debian/Debhelper/Sequence/elfcost.pm

# Debian packages the tests use (compilers for the samples, peers for the benchmarks, qemu's
# user-mode emulators to run other machines' loaders), and other architectures' package lists.
deps-apt:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  added=; for a in $(FOREIGN_ARCHES); do \
	    dpkg --print-foreign-architectures | grep -qx $$a || { dpkg --add-architecture $$a; added=1; }; \
	  done; \
	  if [ -n "$$added" ]; then apt-get update -qq; fi; \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else echo "not root: install $(APT_PACKAGES) yourself if tests skip"; fi

samples:
	$(MAKE) -C sample_binaries OUT=$(abspath $(SAMPLES)) -j2 >/dev/null

test: install deps-apt samples
	$(PY) -m pytest -q

# The long hostile-input run (docs/robustness.md): about FUZZ_EXAMPLES random mutants
# instead of the fixed few thousand of `make test`, and every corpus case run on its own.
FUZZ_EXAMPLES ?= 100000

fuzz: install
	ELFCOST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/fuzz

# The other files elfcost reads (budgets, baselines, saved reports, scan cache entries,
# captures, archives): CHANNEL_CASES random mutants from seed CHANNEL_SEED, outside pytest.
CHANNEL_CASES ?= 1000000
CHANNEL_SEED ?= 0

fuzz-channels: install samples
	PYTHONPATH=src nice -n 19 $(PY) tests/fuzz/channels.py $(CHANNEL_CASES) --seed $(CHANNEL_SEED)

# The JSON Schema files of src/elfcost/report/schema/, generated from the document Structs.
schemas: install
	$(PY) -m elfcost.report.schemas

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy

bench: install deps-apt samples
	$(PY) bench/deps
	$(PY) bench/estimate
	$(PY) bench/accuracy

clean:
	rm -rf build $(VENV)
