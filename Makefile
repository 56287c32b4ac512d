# hull: build, demo and tests. Run as root on Debian 12.
CARGO ?= cargo
HULL := target/release/hull
BUNDLE := build/bundle

.PHONY: all deps build demo shell test test-cgroupv2 test-clients bench lint fmt clean

all: build

deps:
	integration/deps.sh

build:
	$(CARGO) build --release

# One command: install what is needed, build, run a real container.
demo: deps build
	integration/mkbundle.sh $(HULL) $(BUNDLE)
	$(HULL) run --bundle $(BUNDLE) hull-demo-$$$$

# An interactive busybox shell in a container (needs a terminal).
shell: deps build
	integration/mkbundle.sh $(HULL) build/shell interactive
	$(HULL) run --bundle build/shell hull-shell-$$$$

# One command: install what is needed, build, run every test (as root):
# the unit and integration tests, then the real callers' suite.
test: deps
	$(CARGO) build --release
	$(CARGO) test --release -- --test-threads=2
	$(MAKE) test-clients HULL=$(HULL)

# The same test binaries, as root inside a cgroup v2 VM (QEMU, TCG).
test-cgroupv2: deps
	$(CARGO) test --release --no-run
	integration/vm/cgroupv2.sh $(HULL) $$($(CARGO) test --release --no-run 2>&1 | sed -n 's/^ *Executable .*(\(.*\))$$/\1/p')

# hull driven by podman+conmon, containerd+ctr, containerd's CRI plugin and
# Docker Engine (integration/clients/run.sh). RUNTIME=runc runs the same
# scenarios with Debian's runc; `make test-clients HULL=path` tests that
# binary instead of building one.
test-clients: deps
ifeq ($(HULL)$(filter-out hull,$(RUNTIME)),target/release/hull)
	$(CARGO) build --release
endif
	HULL=$(HULL) integration/clients/run.sh

# hull against crun and runc on the same bundle: create->start->delete, run,
# exec, state/list among many, a parallel burst, memory, the unshare floor.
# QUICK=1 does a few runs (what CI does, to show the script works).
bench: deps build
	integration/bench.py $(HULL) $(if $(QUICK),--quick) $(if $(OUT),--out $(OUT))

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf build
