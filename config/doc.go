// Package config reads MHA's configuration files unchanged: a global
// masterha_default.conf and an application file such as app1.conf, plus the
// few keys mharaft adds (ssh_key, ssh_known_hosts, datacenter, ...).
//
// It owns parsing and validation only; it opens no connection. Invariants:
// an unknown key, a bad value or a missing required key is an error naming
// the file, the line, the key and what is allowed; a file that fails to load
// yields no App at all, so nothing starts on a bad file. Passwords are kept
// in the App but never appear in an error message.
package config
