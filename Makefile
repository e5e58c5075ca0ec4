# fieldsync: offline-first sync server and Go SDK.
# Only Go is needed; every target installs what else it uses.

GO        ?= go
BIN       := bin
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
FUZZTIME  ?= 30s

.PHONY: all build test test-short test-deps bind-check bench bench-deps bench-etcd bench-memory fuzz lint demo clean soak screenshots

all: build

build:
	$(GO) build -o $(BIN)/fieldsyncd ./server/cmd/fieldsyncd
	$(GO) build ./...

## test: lint, the mobile binding check, then every test with the race
## detector. Tests that need a system part (the console's browser test needs
## Chromium and a Chinese font) skip with a reason where it is absent;
## `make test-deps` (root) or .ci/run installs them. GOTESTFLAGS adds flags
## to go test (-json for per-test times, -v).
test: lint bind-check
	$(GO) test -race -count=1 -timeout 15m $(GOTESTFLAGS) ./...

## test-deps: Debian's chromium, a CJK font and nginx, installed when missing.
test-deps:
	.ci/install-test-deps

## bind-check: gobind generates the Java and Objective-C bindings of
## client-sdk/mobile into a temporary directory; an error, or a name it
## had to skip as unbindable, fails. gobind is the version go.mod pins as a
## tool (`go tool` builds it from the module proxy on first use); it needs
## no Android SDK, NDK or Xcode.
bind-check:
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	$(GO) tool gobind -lang=java,objc -outdir "$$out" ./client-sdk/mobile && \
	if grep -rnE '^[[:space:]]*// skipped ' "$$out"; then \
		echo "gobind skipped the names above: client-sdk/mobile may export only bindable types"; exit 1; \
	fi && echo "gobind: java and objc bindings of client-sdk/mobile generated"

test-short:
	$(GO) test -short -count=1 ./...

## bench: Go benchmarks, the load program against a real server beside
## etcd on the same shape of load (bench-etcd), the load program's open
## loop at 2,000, 10,000 and 20,000 ops/s (3 to 4 minutes with its setup),
## the same load through nginx against two partitions beside one direct
## (one line says so where nginx is absent: make test-deps installs it),
## one node against a three-node cluster with 10 failovers of its leader
## (about 6 minutes, docs/BENCHMARKS.md), then the 2G scenarios through
## the shaping proxy (about 18 minutes of the total: their links are
## 50-64 kbit/s, and one waits out a 7-minute outage).
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./syncproto/ ./server/... ./client-sdk/...
	$(MAKE) --no-print-directory bench-etcd
	$(GO) run ./examples/load -rates 2000,10000,20000
	$(GO) run ./examples/load -through-nginx
	$(GO) run ./examples/load -cluster
	$(GO) run ./examples/twog

## bench-etcd: fieldsync's load program and etcd (one node, WAL fsynced
## before every answer) under the same shape of load, interleaved twice
## (about 4 minutes) so the machine's other work falls on both (issue 17; docs/BENCHMARKS.md,
## "fieldsync beside etcd"). examples/etcdload is its own Go module, so the
## main module does not take in etcd's client; where no etcd binary is
## found the etcd runs are skipped with one line (make bench-deps installs it).
bench-etcd:
	@for i in 1 2; do \
		$(GO) run ./examples/load || exit 1; \
		if command -v etcd >/dev/null 2>&1; then \
			(cd examples/etcdload && $(GO) run .) || exit 1; \
		else \
			echo "etcd comparison skipped: no etcd binary in PATH (make bench-deps installs Debian's etcd-server)"; \
		fi; \
	done

## bench-memory: the server's memory at 1,000,000 warnings and 1,000
## devices (issue 17; docs/BENCHMARKS.md, "Issue 17: memory at 1,000,000
## warnings and 1,000 devices"): examples/scale builds the store (about
## 7 minutes and 5.3 GB under $$TMPDIR), serves it from a fieldsyncd child
## and prints its RssAnon through sign-in, initial sync, pushes and held
## pulls (about 2 more minutes). Not in bench: it alone would take longer
## than the Go benchmarks. SCALEFLAGS adds flags (-data DIR keeps the store
## for the next run, which then takes about 2 minutes).
bench-memory:
	$(GO) run ./examples/scale $(SCALEFLAGS)

## bench-deps: Debian's etcd-server for the etcd comparison, installed when
## missing (needs root).
bench-deps:
	.ci/install-bench-deps

## soak: the long randomized tests (convergence over random faults, the
## SIGKILL crash tests, the compaction stress, the cluster's leader kills)
## SOAK times their make test size, with the race detector.
SOAK ?= 10
soak:
	FIELDSYNC_SOAK=$(SOAK) $(GO) test -race -count=1 -timeout 3h \
		-run '^(TestConverge|TestCrash_Kill|TestCrash_KillDuringPush|TestCompactIndex_Stress|TestCluster_ChildProcesses)$$' \
		./client-sdk/ ./server/crashtest/ ./server/store/ ./server/clustertest/

## fuzz: each decoder's fuzz target for FUZZTIME.
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePush$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePull$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeFeed$$' -fuzztime=$(FUZZTIME) ./syncproto/
	$(GO) test -run='^$$' -fuzz='^FuzzParseCSV$$' -fuzztime=$(FUZZTIME) ./server/feed/
	$(GO) test -run='^$$' -fuzz='^FuzzSafeCell$$' -fuzztime=$(FUZZTIME) ./server/feed/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyBackup$$' -fuzztime=$(FUZZTIME) ./server/store/storefile/
	$(GO) test -run='^$$' -fuzz='^FuzzIndexValue$$' -fuzztime=$(FUZZTIME) ./server/store/internal/schema/
	$(GO) test -run='^$$' -fuzz='^FuzzLatest$$' -fuzztime=$(FUZZTIME) ./server/store/internal/schema/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeLog$$' -fuzztime=$(FUZZTIME) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeAttempt$$' -fuzztime=$(FUZZTIME) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeState$$' -fuzztime=$(FUZZTIME) ./server/store/
	$(GO) test -run='^$$' -fuzz='^FuzzHistRecord$$' -fuzztime=$(FUZZTIME) ./server/store/

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: gofmt, go vet, staticcheck, and go.mod/go.sum as go mod tidy
## leaves them.
lint: $(STATICCHECK)
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## demo: a server with a ready demo city in a temporary store.
demo:
	$(GO) run ./server/cmd/fieldsyncd demo

## screenshots: the console's dashboard for each role at 1366 and 390 px,
## photographed in headless Chromium against `fieldsyncd demo`, into
## screenshots/ (not committed), for people to look at.
screenshots: build
	$(GO) run ./examples/screenshots -fieldsyncd $(BIN)/fieldsyncd -out screenshots

clean:
	rm -rf $(BIN)
	$(GO) clean -testcache
