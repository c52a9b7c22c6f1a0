// Package mhacompat re-enacts MHA's 90 regression scenarios
// (mha4mysql-manager tests/t/t_*.sh) against mharaft on real MariaDB
// servers and a real sshd, and writes docs/mha-compat.md from the results.
//
// The scenarios are long (each starts a master and four replicas), so the
// suite runs only when MHARAFT_MHA_COMPAT=1 and never under -short:
// `make mha-compat` runs it; CI's default `go test ./...` runs only
// TestCatalogue, which checks the catalogue itself.
//
// Invariants:
//   - Scenarios lists exactly MHA's 90 scenario names, each once.
//   - Every scenario has exactly one status in the document: pass or fail
//     (re-enacted by the suite), not applicable (with why), not supported
//     yet (with what is missing) or not re-enacted yet.
//   - A re-enactment that departs from MHA's script (data scaled down, a
//     manager start played by check-repl, a row written on the master
//     mharaft elected where it deliberately elects another one) says so
//     in the scenario's Adapted or Differs note, shown in the document.
//   - The document is written only after a full run (no -run filter that
//     skipped a re-enacted scenario), so it never mixes runs.
//   - The code and text are our own: the catalogue describes MHA's intent
//     in our words; nothing of MHA's is copied.
package mhacompat
