// Package remote reaches DB hosts over SSH (golang.org/x/crypto/ssh): run a
// POSIX shell command, stat, read byte ranges of files and write files.
// Nothing of ours is installed on a DB host; only sh, cat, dd, ls, stat and
// test are used there.
//
// Invariants: the server's host key is always verified against a
// known_hosts file (there is no "ignore host key" switch); a mismatch is an
// error that names host:port and tells the operator what to do. Every
// dial and command is bounded by a timeout or the caller's context; with
// Config.AliveInterval set, a connection whose host stops answering
// keepalives is also closed, failing every command on it.
//
// ConfigFor takes everything from config.Server, where config already
// applied ssh_options (-i, -p, -l, UserKnownHostsFile, ConnectTimeout,
// ServerAliveInterval, ServerAliveCountMax) and refused the options that
// would weaken host-key checking.
package remote
