# echoctl: make build | run | test | lint | clean
GO      ?= go
BIN     ?= bin/echoctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/echoctl/echoctl/cmd
LDFLAGS := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) -X $(PKG).date=$(DATE)

.PHONY: all build run test lint fuzz clean

all: build

## build: compile ./bin/echoctl with version information
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: run the echo server on its default address (localhost:10000)
run:
	$(GO) run . serve

## test: go vet, then every test with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -timeout 10m ./...

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run each fuzz target for a short, bounded time
FUZZTIME ?= 10s
fuzz:
	$(GO) test ./pkg/echo -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime $(FUZZTIME)

## clean: remove build output
clean:
	rm -rf bin dist
