# The few targets people look for. `make test` is the project's test command.
GO ?= go
BENCH ?= .
BENCHPKG ?= ./...
COUNT ?= 6

.PHONY: all build test test-short bench lint fmt run tidy-check

all: lint test

build:
	$(GO) build ./...

# Starts the Redis servers the suites need, runs every test with -race.
# -count=1: never report a cached pass for tests that talk to servers.
# TestMemoryPerDocument is built without -race (reconcile/memory_test.go says
# why), so it runs in a second, race-free pass.
test:
	scripts/check-alerts.sh
	scripts/with-servers.sh $(GO) test -race -count=1 -timeout 15m ./...
	scripts/with-servers.sh $(GO) test -count=1 -timeout 5m -run '^TestMemoryPerDocument$$' ./reconcile

# Unit tests that need no server (skips the server-backed suites).
test-short:
	$(GO) test -short ./...

# Benchmarks, -count $(COUNT) for benchstat; e.g. make bench BENCHPKG=./kv/memkv BENCH=P4
bench:
	scripts/with-servers.sh $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(BENCHPKG)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change go.mod/go.sum"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

# The embedded default: primary and Pebble under ./memcell-data, API on 127.0.0.1:8080.
run:
	$(GO) run ./cmd/memcell serve
