# berth — see README.md. Every target runs as root on a Debian machine.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN     := bin/berth
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X berth/version.GitCommit=$(COMMIT)
# The suite's upper bound; CI allows 90 minutes, the suite aims at well under 30.
TEST_TIMEOUT ?= 25m

.PHONY: all build deps test demo demo-btrfs bench lint clean

all: build

# Static (no cgo): the binary is also --init's /sbin/docker-init inside
# containers, which have no libc of the host's.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .
	$(GO) build -o bin/mkbusybox ./testutil/mkbusybox

deps:
	scripts/deps.sh

test: lint
	scripts/deps.sh test
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

demo: deps build
	scripts/demo.sh

# The demo on a btrfs data root: a loop-mounted image in a temp dir, removed after.
demo-btrfs: deps build
	scripts/btrfs-dataroot.sh demo

# Every benchmark of bench/ and registry/bench beside the installed peers
# (a private dockerd for the run when none answers), then docs/benchmarks.md
# and its chart (scripts/bench.sh; BENCH=regexp runs a subset, report to /tmp).
bench: build
	GO=$(GO) scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
