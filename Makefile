# mharaft build, test, demo and benchmark entry points.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -count=1 -timeout 40m
ROUNDS    ?= 50
SEED      ?= 0
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all deps build test test-unit vet fmt demo bench bench-scale jepsen clean

all: build

deps:
	@bash scripts/deps.sh

build:
	$(GO) build -o bin/ ./cmd/...

# vet: go vet, gofmt, staticcheck (pinned; fetched through the module proxy
# on first use) and a go.mod/go.sum that `go mod tidy` would not change.
vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) run $(STATICCHECK) $(PKGS)
	@$(GO) mod tidy -diff || (echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1)

# The README's test command: vet, gofmt, every test (unit, real MariaDB, real
# sshd, real mhanode clusters, the short chaos campaign) and a short fuzz run.
test: deps vet
	bash scripts/test.sh

# The unit lane: every test that needs no server, under a minute. -short
# skips the tests that start MariaDB, sshd, mhanode clusters or the chaos
# harness (testbed.Start, the demo's, e2e's and jepsen's tests); no deps,
# no root needed.
test-unit:
	$(GO) test -short -count=1 -timeout 5m $(PKGS)

demo: deps build
	./bin/mhademo $(DEMOFLAGS)

bench: deps build
	bash scripts/bench.sh

# Only the scale suite (real + simulated applications, three mhanode), e.g.
# make bench-scale MHABENCH_SCALE_SIZES=60,300 (see bench/scale.go).
bench-scale: deps build
	$(GO) run ./cmd/mhabench --out out/bench scale

jepsen: deps build
	$(GO) run ./cmd/mhajepsen --rounds $(ROUNDS) --seed $(SEED)

# jepsen-dc: the datacenter campaign only (issue 16, docs/MULTI-DC.md): the
# master's datacenter cut with and without semi-sync, another datacenter
# cut, prevent_cross_dc_failover; layouts 3dc and 2dc+tb in turn.
DC_NEMESES ?= dc-partition-master,dc-partition-master-lossless,dc-partition-other,dc-partition-no-cross-dc
jepsen-dc: deps build
	$(GO) run ./cmd/mhajepsen --rounds $(ROUNDS) --seed $(SEED) --nemeses $(DC_NEMESES) --out out/jepsen-dc

clean:
	rm -rf bin out

# dist: out/dist/mharaft_<version>_<arch>.deb and mharaft-<version>-linux-<arch>.tar.gz:
# mhanode, mhactl, the systemd unit, the example configuration, the docs
# (docs/INSTALL.md; dist/doc.go lists the files). VERSION=v1.2.3 or GOARCH=arm64
# in the environment or on make's command line choose another version or CPU.
.PHONY: dist
dist:
	GO=$(GO) bash scripts/dist.sh

# mha-compat: re-enact MHA's 90 regression scenarios (package mhacompat) on
# real MariaDB servers and sshd, and write docs/mha-compat.md from the results.
# Long: not part of `make test`'s default run (the package skips unless
# MHARAFT_MHA_COMPAT=1).
.PHONY: mha-compat
mha-compat:
	MHARAFT_MHA_COMPAT=1 $(GO) test -count=1 -timeout 90m -v -run 'TestCatalogue|TestMHACompat' ./mhacompat/
