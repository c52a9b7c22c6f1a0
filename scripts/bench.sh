#!/usr/bin/env bash
# `make bench`: Go micro-benchmarks, then the measured suites (real servers),
# which print tables and write JSON under out/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out/bench
# Only the packages that have Go benchmarks (others' TestMain would start servers).
bench_pkgs=$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)
go test -run '^$' -bench . -benchmem $bench_pkgs | tee out/bench/go-bench.txt
go run ./cmd/mhabench -out out/bench "$@"
