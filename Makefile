# fieldsync: offline-first sync server and Go SDK.
# Only Go is needed; every target installs what else it uses.

GO        ?= go
BIN       := bin
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
FUZZTIME  ?= 30s

.PHONY: all build test test-short bench fuzz lint demo clean soak

all: build

build:
	$(GO) build -o $(BIN)/fieldsyncd ./server/cmd/fieldsyncd
	$(GO) build ./...

## test: every test, with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

## bench: Go benchmarks, then the load program against a real server.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./syncproto/ ./server/...
	$(GO) run ./examples/load

## fuzz: each decoder's fuzz target for FUZZTIME.
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePush$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePull$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeFeed$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCSV$$' -fuzztime=$(FUZZTIME) ./server/feed/

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: gofmt, go vet and staticcheck.
lint: $(STATICCHECK)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## demo: a server with a ready demo city in a temporary store.
demo:
	$(GO) run ./server/cmd/fieldsyncd demo

clean:
	rm -rf $(BIN)
	$(GO) clean -testcache
