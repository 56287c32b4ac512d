# hull: build, demo and tests. Run as root on Debian 12.
CARGO ?= cargo
HULL := target/release/hull
BUNDLE := build/bundle

.PHONY: all deps build demo shell test unit lint fmt clean

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

# One command: install what is needed, build, run every test (as root).
test: deps
	$(CARGO) build --release
	$(CARGO) test --release -- --test-threads=2

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf build
