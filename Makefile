# hull: build, demo and tests. Run as root on Debian 12.
CARGO ?= cargo
# hull is linked statically (glibc static-pie, Debian's libseccomp.a): no
# dynamic loader at each of the execs a container's life takes (create, the
# init stage, start, exec, delete: ~1 ms each here), and no shared library
# that a host upgrade swaps under a waiting init. hull uses no NSS. With an
# explicit --target the flags reach hull's crates only, not build scripts.
# Its relocations are packed (DT_RELR, glibc 2.36+, binutils 2.38+): 10,600
# RELA entries (255 KB read at every exec before main) become a 3 KB bitmap;
# `hull --version` takes ~0.15 ms less, and position independence (ASLR) stays.
TARGET ?= $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE := --release --target $(TARGET)
STATIC = RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static \
	-C link-arg=-Wl,-z,pack-relative-relocs" \
	LIBSECCOMP_LINK_TYPE=static \
	LIBSECCOMP_LIB_PATH="$$(pkg-config --variable=libdir libseccomp)"
HULL := target/$(TARGET)/release/hull
BUNDLE := build/bundle

.PHONY: all deps build demo shell test test-cgroupv2 test-systemd test-systemd-clients test-clients bench bench-systemd lint fmt clean \
	man install uninstall deb test-packaging fuzz soak

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
GEN := build/gen

all: build

deps:
	integration/deps.sh

build:
	$(STATIC) $(CARGO) build $(RELEASE)

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
	$(STATIC) $(CARGO) build $(RELEASE)
	$(STATIC) $(CARGO) test $(RELEASE) -- --test-threads=2
	$(MAKE) test-clients HULL=$(HULL)

# The same test binaries, as root inside a cgroup v2 VM (QEMU, TCG), with
# strace for the tests that kill hull half-way through a verb.
test-cgroupv2: deps
	$(STATIC) $(CARGO) test $(RELEASE) --no-run
	VM_EXTRA="$(VM_EXTRA) $$(command -v strace) $$(command -v dbus-daemon)" \
	integration/vm/cgroupv2.sh $(HULL) $$($(STATIC) $(CARGO) test $(RELEASE) --no-run 2>&1 | sed -n 's/^ *Executable .*(\(.*\))$$/\1/p')

# The systemd lane: Debian 12 with systemd 252 as PID 1 and dbus, booted
# under QEMU from an image cached in /var/cache/hull-vm (integration/vm).
# Runs the tests that need a systemd: the systemd cgroup driver's
# (tests/systemd.rs) and the library's own (the D-Bus client starts a scope),
# the rootless and checkpoint/restore tests (CRIU works on the VM's 6.1
# kernel), then the driver's and checkpoint's again on systemd's hybrid
# (cgroup v1) layout.
test-systemd: deps
	$(STATIC) $(CARGO) test $(RELEASE) --no-run
	integration/vm/systemd.sh $(HULL) $$($(STATIC) $(CARGO) test $(RELEASE) --no-run 2>&1 | sed -n -e 's/^ *Executable unittests src\/lib.rs (\(.*\))$$/\1/p' -e 's/^ *Executable tests\/systemd.rs (\(.*\))$$/\1/p' -e 's/^ *Executable tests\/rootless.rs (\(.*\))$$/\1/p' -e 's/^ *Executable tests\/checkpoint.rs (\(.*\))$$/\1/p')
	VM_CGROUP=hybrid integration/vm/systemd.sh $(HULL) $$($(STATIC) $(CARGO) test $(RELEASE) --no-run 2>&1 | sed -n -e 's/^ *Executable tests\/systemd.rs (\(.*\))$$/\1/p' -e 's/^ *Executable tests\/checkpoint.rs (\(.*\))$$/\1/p')

# The systemd driver's speed: integration/bench.py --systemd in the systemd
# lane's guest (hull, crun and runc with --systemd-cgroup, ratios only: the
# lane is emulated). QUICK=1 for a short run.
bench-systemd: deps build
	VM_TIMEOUT=3600 VM_TEST_ARGS="$(if $(QUICK),--quick)" \
	VM_EXTRA="$(CURDIR)/integration/bench.py $(CURDIR)/integration/mkbundle.sh" \
	integration/vm/systemd.sh $(HULL) integration/vm/systemd-bench.sh

# The callers in their systemd configurations (podman's systemd cgroup
# manager, containerd's SystemdCgroup, Docker's systemd driver) in the
# systemd lane: integration/clients with CLIENTS_CGROUP=systemd, and
# rootless podman as the lane's ordinary user (podman-rootless).
# SCENARIOS picks some (e.g. "podman/run_rm ctr"), RUNTIME=runc runs the
# same with Debian's runc.
test-systemd-clients: deps build
	VM_MEM=4096 VM_TIMEOUT=3600 VM_TEST_ARGS="$(or $(SCENARIOS),podman ctr cri docker podman-rootless podman-cr ctr-cr)" \
	CLIENTS_RUNTIME=$(or $(RUNTIME),hull) \
	VM_EXTRA="$(CURDIR)/integration/clients" \
	integration/vm/systemd.sh $(HULL) integration/vm/clients-guest.sh

# hull driven by podman+conmon, containerd+ctr, containerd's CRI plugin and
# Docker Engine (integration/clients/run.sh). RUNTIME=runc runs the same
# scenarios with Debian's runc; `make test-clients HULL=path` tests that
# binary instead of building one.
test-clients: deps
ifeq ($(HULL)$(filter-out hull,$(RUNTIME)),target/$(TARGET)/release/hull)
	$(STATIC) $(CARGO) build $(RELEASE)
endif
	HULL=$(HULL) integration/clients/run.sh

# hull against crun and runc on the same bundle: create->start->delete, run,
# exec, state/list among many, a parallel burst, memory, the unshare floor.
# QUICK=1 does a few runs (what CI does, to show the script works).
bench: deps build
	integration/bench.py $(HULL) $(if $(QUICK),--quick) $(if $(OUT),--out $(OUT))

# Every fuzz target (fuzz/) under libFuzzer for FUZZ_SECONDS each (60 by
# default; nightly and cargo-fuzz, installed if missing). `cargo test` runs
# the same targets on stable over fuzz/corpus.
fuzz:
	integration/fuzz.sh

# A long soak (not in CI): CYCLES create->start->exec->kill->delete cycles
# (10,000), PARALLEL at once (8), with containers that exit at once, fork
# bombs, OOM kills and SIGTERM-deaf ones; fails on any leak or hang.
soak: deps build
	integration/soak.py $(HULL) $(if $(CYCLES),--cycles $(CYCLES)) \
		$(if $(PARALLEL),--parallel $(PARALLEL)) $(if $(OUT),--out $(OUT))

# Man pages (one per verb) and bash/zsh/fish completions, generated from
# hull's own clap definitions (tools/gen.rs) so they cannot drift.
man:
	$(CARGO) build --release --features gen --bin hull-gen
	rm -rf $(GEN) && target/release/hull-gen $(GEN)

install: build man
	install -D -m 0755 $(HULL) $(DESTDIR)$(BINDIR)/hull
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(GEN)/man8/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -D -m 0644 $(GEN)/completions/hull $(DESTDIR)$(DATADIR)/bash-completion/completions/hull
	install -D -m 0644 $(GEN)/completions/_hull $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_hull
	install -D -m 0644 $(GEN)/completions/hull.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/hull.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hull $(DESTDIR)$(MANDIR)/man8/hull.8 $(DESTDIR)$(MANDIR)/man8/hull-*.8
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/hull
	rm -f $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_hull
	rm -f $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/hull.fish

# build/hull_VERSION_amd64.deb: the installed tree under /usr, packaged.
deb:
	rm -rf build/deb
	$(MAKE) install DESTDIR=$(CURDIR)/build/deb PREFIX=/usr
	integration/mkdeb.sh build/deb $(VERSION) build

# Checks make install (into a scratch DESTDIR) and make deb produce what
# they promise; a local root run also installs and removes the .deb.
test-packaging:
	integration/packaging.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf build
