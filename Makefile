# mharaft build, test, demo and benchmark entry points.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -count=1 -timeout 40m
ROUNDS    ?= 50
SEED      ?= 0

.PHONY: all deps build test vet fmt demo bench jepsen clean

all: build

deps:
	@bash scripts/deps.sh

build:
	$(GO) build -o bin/ ./cmd/...

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# The README's test command: vet, gofmt, every test (unit, real MariaDB, real
# sshd, real mhanode clusters, the short chaos campaign) and a short fuzz run.
test: deps vet
	bash scripts/test.sh

demo: deps build
	./bin/mhademo $(DEMOFLAGS)

bench: deps build
	bash scripts/bench.sh

jepsen: deps build
	$(GO) run ./cmd/mhajepsen --rounds $(ROUNDS) --seed $(SEED)

clean:
	rm -rf bin out
