// Package api is mharaft's HTTP JSON API, served by every mhanode, and the
// client mhactl uses to reach it.
//
// It owns request parsing, authentication, leader forwarding and the wire
// types; it declares the Backend it needs and never imports the daemon.
// Invariants: every request but /healthz carries the cluster's bearer token
// (compared in constant time); a malformed request gets a 4xx JSON error
// saying what is wrong and changes nothing; an action reaching a follower is
// forwarded to the leader, never run by the follower.
package api
