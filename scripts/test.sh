#!/usr/bin/env bash
# Runs every test of the project; called by `make test` and so by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# -p 2: the machine has two cores and every integration test starts real servers.
$GO test -p 2 -count=1 -timeout 40m ./...
# Short fuzz runs: the binlog reader (20 s), the FSM's command decoding and
# the API's request validation (10 s each); their seed corpora also run above.
# -fuzzminimizetime bounds the minimisation of each new interesting input;
# at its default (60 s) the whole run goes into minimising one input.
fuzz() { # fuzz PKG TARGET TIME
  # (No `| grep -q` here: with pipefail, grep's early exit would fail the pipe.)
  local listed
  listed=$($GO test -list "^$2\$" "$1")
  case "$listed" in
    *"$2"*) $GO test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime 200x "$1" ;;
    *) echo "$1 has no $2 target" >&2; exit 1 ;;
  esac
}
fuzz ./binlog/ FuzzReader 20s
fuzz ./fsm/ FuzzApplyBytes 10s
fuzz ./api/ FuzzValidateAction 10s
