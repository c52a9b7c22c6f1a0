#!/usr/bin/env bash
# Runs every test of the project; called by `make test` and so by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# -p 2: the machine has two cores and every integration test starts real servers.
$GO test -p 2 -count=1 -timeout 40m ./...
# A short fuzz run of the binlog reader (the seed corpus also runs above).
if $GO test -list 'FuzzReader' ./binlog/ 2>/dev/null | grep -q FuzzReader; then
  $GO test -run '^$' -fuzz '^FuzzReader$' -fuzztime 20s ./binlog/
fi
