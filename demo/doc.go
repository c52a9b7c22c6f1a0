// Package demo runs the product's main job on a local sandbox, for
// `make demo` (cmd/mhademo) and for its own test: three real MariaDB
// servers and an sshd (package testbed), an app1.conf in MHA's syntax
// rendered from an embedded template, three mhanode processes on loopback,
// and the real mhactl binary run for every step the user would type.
//
// The full demo shows `mhactl status` and `mhactl check-repl`, puts HAProxy
// in front of the servers (docs/HAPROXY.md: its checks ask the managers'
// routing endpoints), writes rows while the replicas fall behind on
// purpose, starts an application that writes through HAProxy, kills the
// master's mariadbd with SIGKILL, prints the failover's verdicts and
// journal phases as the managers record them, then `mhactl status`,
// `mhactl history` and the failover report, and verifies that every row
// written before the kill, and every write HAProxy acknowledged, is on the
// new master (and the rows on the other replica). Its last lines are the
// client-visible outage: from the kill to the first write acknowledged
// through HAProxy. With NoManagers it only starts the sandbox and runs
// check-repl (which prints the replication tree).
//
// Invariants:
//
//  1. Every process the demo starts (mariadbd, sshd, mhanode, haproxy) runs
//     with a command line that names the demo's directory, and Run stops all of
//     them before it returns, on success, on error and on cancellation;
//     Leftovers(dir) proves it by scanning /proc.
//  2. Every command shown to the user is printed before it runs, exactly as
//     it can be typed again (with the MHACTL_ADDR / MHACTL_TOKEN_FILE
//     exports printed once).
//  3. Passwords are never printed: the configuration is shown with its
//     password values redacted.
package demo
