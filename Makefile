# Karapace build, test and install. `make test` is what CI runs (through .ci/run).
GO        ?= go
PREFIX    ?= $(HOME)/.local
DATADIR   ?= $(PREFIX)/share
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
MODULES   := schema store runtime core remote server cli dbus tui bench
PKGS      := $(foreach m,$(MODULES),./$(m)/...)
LDFLAGS   := -X github.com/karapace/karapace/cli.Version=$(VERSION)
BINARIES  := bin/karapace bin/karapace-dbus bin/karapace-server

.PHONY: all build test test-short bench bench-go fuzz lint fmt install install-data demo clean $(BINARIES)

all: build

build: $(BINARIES)

# The CLI is linked statically: its exec fast path (runtime/namespace/fastexec.h) runs
# before the Go runtime starts, and without the dynamic loader it starts sooner.
bin/karapace:
	$(GO) build -trimpath -tags osusergo,netgo -ldflags '$(LDFLAGS) -linkmode external -extldflags -static' -o $@ ./cli/cmd/karapace
bin/karapace-dbus:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./dbus/cmd/karapace-dbus
bin/karapace-server:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./server/cmd/karapace-server

# Every module, race detector on, integration suites included.
test: build
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# Unit tests only: suites that need real components are skipped.
test-short:
	$(GO) test -short -count=1 $(PKGS)

# The side-by-side harness against the peers (docs/performance.md); QUICK=1 for a short run.
bench: build
	$(GO) run ./bench/cmd/karabench -bin bin $(if $(QUICK),-quick)

# Every module's `go test -bench` benchmarks.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Every fuzz target for FUZZTIME each (not in CI); failing inputs land in testdata.
fuzz:
	scripts/fuzz.sh -t $(or $(FUZZTIME),30s)

lint:
	@unformatted=$$(gofmt -l $(MODULES)); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"; fi

fmt:
	gofmt -w $(MODULES)

install: build install-data
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINARIES) $(DESTDIR)$(PREFIX)/bin/

# D-Bus activation file and systemd user unit for karapace-dbus (docs/dbus.md).
install-data:
	install -d $(DESTDIR)$(DATADIR)/dbus-1/services $(DESTDIR)$(DATADIR)/systemd/user
	sed 's|@bindir@|$(PREFIX)/bin|g' data/dbus/org.karapace.Manager1.service > $(DESTDIR)$(DATADIR)/dbus-1/services/org.karapace.Manager1.service
	sed 's|@bindir@|$(PREFIX)/bin|g' data/systemd/karapace-dbus.service > $(DESTDIR)$(DATADIR)/systemd/user/karapace-dbus.service

# Install (as root) or name (as a user) the Debian packages it needs, then build a Debian
# image from the Debian mirror, an environment with packages, and run it.
demo:
	demo/prereqs.sh
	$(MAKE) bin/karapace
	demo/demo.sh

clean:
	rm -rf bin
