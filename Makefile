# The few targets people look for. `make test` is the project's test command.
GO ?= go
BENCH ?= .
BENCHPKG ?= ./...
COUNT ?= 6
# Build tags for bench, e.g. TAGS=rocksdb for ./kv/rocksdbkv.
TAGS ?=
# The Python client's tests run on Debian's Python (standard library only).
PYTHON ?= /usr/bin/python3

.PHONY: all build build-rocksdb rocksdb-dev test test-python test-short bench bench-scale lint fmt run tidy-check

all: lint test

# The binary of make build and make build-rocksdb.
BIN ?= bin/memcell
# What "memcell version" and memcell_build_info show, from git: go build
# stamps the revision itself only in a plain checkout (not in a git worktree,
# nor with -buildvcs=false). VERSION is empty without a tag; the module
# version is shown then.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
REVISION_TIME ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
MODIFIED ?= $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo true)
LDFLAGS = -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.revisionTime=$(REVISION_TIME) -X main.modified=$(MODIFIED)

# memcell in $(BIN), stamped with its version and revision.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/memcell

# memcell with the RocksDB backend (kv/rocksdbkv, the rocksdb:// scheme) in
# $(BIN): cgo and RocksDB's headers and library (Debian's librocksdb-dev;
# rocksdb-dev installs it when missing).
build-rocksdb: rocksdb-dev
	$(GO) build -tags rocksdb -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/memcell

# RocksDB's headers and library, installed with apt-get when missing; fails
# when they cannot be had.
rocksdb-dev:
	scripts/need-rocksdb.sh

# Starts the Redis servers the suites need, runs every test with -race.
# -count=1: never report a cached pass for tests that talk to servers.
# TestMemoryPerDocument is built without -race (reconcile/memory_test.go says
# why), so it runs in a second, race-free pass. The RocksDB backend is behind
# the build tag rocksdb: a third pass runs its package and its end-to-end test.
test: rocksdb-dev
	scripts/check-alerts.sh
	scripts/with-servers.sh $(GO) test -race -count=1 -timeout 15m ./...
	scripts/with-servers.sh $(GO) test -count=1 -timeout 5m -run '^TestMemoryPerDocument$$' ./reconcile
	$(GO) test -race -count=1 -timeout 10m -tags rocksdb ./kv/rocksdbkv
	$(GO) test -race -count=1 -timeout 10m -tags rocksdb -run '^TestEndToEndRocksDB$$' ./cmd/memcell
	$(MAKE) test-python

# The Python client (clients/python) against a real memcell built here, on
# the embedded default. Fails, never skips, when Python or the server is
# missing.
test-python:
	@command -v $(PYTHON) >/dev/null || { echo "test-python: $(PYTHON) not found"; exit 1; }
	$(GO) build -o bin/memcell ./cmd/memcell
	MEMCELL_BIN=$(CURDIR)/bin/memcell PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest discover -s clients/python/tests -v

# Unit tests that need no server (skips the server-backed suites).
test-short:
	$(GO) test -short ./...

# Benchmarks, -count $(COUNT) for benchstat; e.g. make bench BENCHPKG=./kv/memkv BENCH=P4,
# or make bench BENCHPKG=./kv/rocksdbkv BENCH=Store TAGS=rocksdb
bench:
	scripts/with-servers.sh $(GO) test -tags '$(TAGS)' -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(BENCHPKG)

# The scale benchmark of the embedded default (docs/benchmarks.md, P12): for
# each N of SCALE_DOCS, memcell-load starts $(BIN) on the embedded default in
# a new temporary directory, loads N documents through the API with 4 writers
# (~2 KB, 50 users), reports the load's throughput tenth by tenth, then times
# each kind of request alone. SCALE_FLAGS adds memcell-load flags, e.g.
# make bench-scale SCALE_DOCS=1000 SCALE_FLAGS='--restart --json'
SCALE_DOCS ?= 1000 10000 50000
SCALE_FLAGS ?=
bench-scale: build
	$(GO) build -o bin/memcell-load ./cmd/memcell-load
	@set -e; for n in $(SCALE_DOCS); do \
		echo "== $$n documents"; \
		bin/memcell-load --serve $(BIN) --scale $$n --clients 4 --users 50 $(SCALE_FLAGS); \
	done

# The RocksDB files (build tag rocksdb) are vetted and checked in a second
# pass.
lint: rocksdb-dev
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags rocksdb ./kv/rocksdbkv/... ./memcelltest ./cmd/memcell
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags rocksdb ./kv/rocksdbkv/... ./memcelltest ./cmd/memcell
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change go.mod/go.sum"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

# The embedded default: primary and Pebble under ./memcell-data, API on 127.0.0.1:8080.
run:
	$(GO) run ./cmd/memcell serve
