// Package e2e holds the end-to-end tests of mharaft: they build mhanode and
// mhactl once, start real MariaDB servers (testbed) and three real mhanode
// processes (manager/managertest) with TLS, and drive them only as an
// operator would: mhactl command lines (output and exit codes), raw HTTP
// requests to the API and a Prometheus scrape of /metrics.
//
// Invariants: the whole package shares one database cluster and one manager
// cluster (set up in TestMain); tests that change the topology (switch,
// failover) read the current master from the cluster instead of assuming
// one, so each test also runs alone (-run). The package has tests only.
package e2e
