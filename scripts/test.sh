#!/usr/bin/env bash
# Runs every test of the project; called by `make test` and so by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# -p 2: the machine has two cores and every integration test starts real servers.
$GO test -p 2 -count=1 -timeout 40m ./...
# A short fuzz run of the binlog reader (the seed corpus also runs above).
# (No `| grep -q` here: with pipefail, grep's early exit would fail the pipe.)
fuzz_targets=$($GO test -list '^FuzzReader$' ./binlog/)
case "$fuzz_targets" in
  # -fuzzminimizetime bounds the minimisation of each new interesting input;
  # at its default (60 s) the whole 20 s go into minimising one input.
  *FuzzReader*) $GO test -run '^$' -fuzz '^FuzzReader$' -fuzztime 20s -fuzzminimizetime 200x ./binlog/ ;;
  *) echo "binlog has no FuzzReader target" >&2; exit 1 ;;
esac
