// Package config reads MHA's configuration files unchanged: a global
// masterha_default.conf and an application file such as app1.conf, plus the
// few keys mharaft adds (ssh_key, ssh_known_hosts, datacenter, ...).
//
// It owns parsing and validation only; it opens no connection. Invariants:
// an unknown key, a bad value or a missing required key is an error naming
// the file, the line, the key and what is allowed; a file that fails to load
// yields no App at all, so nothing starts on a bad file. Passwords are kept
// in the App but never appear in an error message.
//
// ssh_options is read as ssh(1) options: those that say how to reach a host
// (-i, -p, -l, UserKnownHostsFile, ConnectTimeout, ServerAlive*) set the
// Server's SSH fields, and must agree with ssh_key, ssh_port, ssh_user,
// ssh_known_hosts and ssh_connection_timeout where both are written; any
// other option is refused at load, naming it, unless it only asks for what
// mharaft does anyway. Nothing can turn host-key checking off:
// StrictHostKeyChecking other than yes and UserKnownHostsFile=/dev/null are
// refused with how to add the host key instead.
package config
