#!/usr/bin/env bash
# `make bench`: Go micro-benchmarks, then the measured suites (real servers),
# which print tables and write JSON under out/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out/bench
go test -run '^$' -bench . -benchmem ./... | tee out/bench/go-bench.txt
go run ./cmd/mhabench -out out/bench "$@"
