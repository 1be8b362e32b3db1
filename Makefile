# echoctl: make build | run | test | lint | fuzz | fuzz-ci | soak | bench | docs | release-snapshot | clean | help
GO      ?= go
BIN     ?= bin/echoctl
# A release version only at a tag (v1.2.3 -> 1.2.3, as goreleaser names it)
# with no uncommitted change; anything else is a development build, which
# `echoctl version` says, its commit marked -dirty when the tree has changes.
DIRTY   := $(shell git status --porcelain --untracked-files=no 2>/dev/null | head -c 1)
VERSION ?= $(if $(DIRTY),dev,$(or $(patsubst v%,%,$(shell git describe --tags --exact-match 2>/dev/null)),dev))
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)$(if $(DIRTY),-dirty)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/echoctl/echoctl/cmd
LDFLAGS := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) -X $(PKG).date=$(DATE)

.PHONY: all build run test lint fuzz clean bench help

all: build

## help: list the targets, with what each does
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(MAKEFILE_LIST) | expand -t 18

## build: compile ./bin/echoctl with version information
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: build ./bin/echoctl, then exec it as the echo server on its default address (localhost:10000); on Ctrl-C it exits 0 and make reports no error
# exec, not go run: go run exits 1 when its child is interrupted, and make
# would then report "Error 1" for a clean Ctrl-C.
run: build
	exec $(BIN) serve

## test-deps: install what the tests run against when missing (haproxy, nginx, socat and the rest; apt-get as root; see scripts/test-deps.sh)
.PHONY: test-deps
test-deps:
	./scripts/test-deps.sh

## test: the test tools (test-deps), go vet, then every test with the race detector, echoctl's and those of the benchmark module in bench/
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -timeout 10m ./...
	# Allocation counts, which the race detector changes (its sync.Pool drops items): without it.
	$(GO) test -count 1 -run 'Allocs$$' ./pkg/...
	cd bench && $(GO) vet ./... && $(GO) test -race -timeout 5m ./...

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

## fuzz: run each fuzz target for a short, bounded time
FUZZTIME ?= 10s
fuzz:
	$(GO) test ./pkg/echo -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/echo -run '^$$' -fuzz '^FuzzParseAddr$$' -fuzztime $(FUZZTIME)

## fuzz-ci: run every fuzz target of every package for FUZZCI_TIME (5s) each, seed corpora in testdata/fuzz; .ci/run runs it after test
FUZZCI_TIME ?= 5s
.PHONY: fuzz-ci
fuzz-ci:
	GO=$(GO) FUZZCI_TIME=$(FUZZCI_TIME) ./scripts/fuzz-ci.sh

## soak: about a minute of connection churn at full speed with 2,000 more connections held open, against the built binary; prints RSS, goroutines and open fds at start, peak and end (not in CI; see docs/reliability.md)
.PHONY: soak
soak:
	ECHOCTL_SOAK=1 $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 5m ./internal/reliability

## clean: remove build output
clean:
	rm -rf bin dist completions manpages

## bench: echoctl against a plain Go server, gnet, the seed's asyncio server and socat, and over TLS, Unix sockets and UDP, pinned with taskset; writes docs/benchmarks.md and its charts, docs/benchmarks.html (about 10 minutes: 3 interleaved rounds; not part of test)
bench:
	GO=$(GO) ./scripts/bench.sh

## docs: regenerate docs/cli/*.md (committed; TestDocsCLIUpToDate fails when stale) and the man pages in manpages/ (not committed), from the command tree
.PHONY: docs
docs:
	$(GO) run . gen docs --dir docs/cli
	$(GO) run . gen man --dir manpages

## release-snapshot: goreleaser check, then every release artifact into dist/ (no tag, no upload, no network but the Go module proxy), then scripts/release-check.sh on them
# GoReleaser is pinned and run with go run (its first build takes minutes).
GORELEASER ?= $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1
.PHONY: release-snapshot
release-snapshot:
	$(GORELEASER) check
	$(GORELEASER) release --snapshot --clean
	./scripts/release-check.sh dist
