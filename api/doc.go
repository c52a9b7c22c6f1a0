// Package api is mharaft's HTTP JSON API, served by every mhanode, and the
// client mhactl uses to reach it.
//
// It owns request parsing, authentication, leader forwarding and the wire
// types; it declares the Backend it needs and never imports the daemon.
// Invariants: every request but /healthz carries the cluster's bearer token
// (compared in constant time); a malformed request gets a 4xx JSON error
// saying what is wrong and changes nothing; an action reaching a follower is
// forwarded to the leader, never run by the follower.
//
// # Serving
//
//	m := metrics.New()
//	cfg := api.ServerConfig{TokenFile: "/etc/mharaft/token", TLSCert: crt, TLSKey: key}
//	if _, err := cfg.LoadToken(); err != nil { ... refuse to start ... }
//	h := api.NewHandler(backend, cfg, m.Registry)
//	err := api.Serve(ctx, listener, h, cfg) // HTTPS when TLSCert/TLSKey are set
//
// Routes (Go 1.22 ServeMux patterns):
//
//	GET  /healthz              no token; {"ok":true,"leader":bool,"version":"..."}; 503 with
//	                           {"ok":false,"removed":true,"error":"..."} on a removed manager
//	GET  /v1/status            Status (this node's view; any node answers)
//	GET  /v1/apps/{app}        AppStatus, with its journal; 404 for an unknown app
//	GET  /v1/history?app=NAME  []HistoryEntry, oldest first; app optional; 404 for an unknown app
//	POST /v1/actions           body Action, answer ActionResult
//	GET  /metrics              Prometheus text format; needs the token unless ServerConfig.MetricsOpen
//	GET  /v1/apps/{app}/servers/{server}/primary   no token; 200 {"role":"master"} on the writable master, else 503
//	GET  /v1/apps/{app}/servers/{server}/replica   no token; 200 {"role":"replica"} on a replica within ?lag= (10s), else 503
//	POST /v1/apps/{app}/servers/{server}/reconcile body {"apply":bool}; answer Reconcile (reconcile.go): the
//	                           divergent transactions of a former master, replayed with apply; the leader
//	                           answers (a follower forwards it as an action); 404 without a recorded divergence
//
// The two routing endpoints (routing.go, docs/HAPROXY.md) are for load
// balancers' health checks: the only routes besides /healthz without a
// token, read-only, answered by this manager alone from RoutingBackend
// (never forwarded), with a body that tells the role and nothing else. A
// removed manager, or one whose state may be behind, answers 503.
//
// /metrics needs the token by default because Prometheus sends bearer
// tokens (scrape_config authorization: credentials_file); MetricsOpen is
// for scrapers that cannot.
//
// A Backend that implements MembershipReporter and says it is not (or no
// longer) a member of the Raft group gets 503 on /healthz (removed, with
// its error, which names the way back) and on every /v1 route: a removed
// manager serves neither its stale status nor actions. /metrics still
// answers. The Client passes over such a node when it looks for one.
//
// # Errors
//
// Every 4xx/5xx answer is {"error": "what is wrong", "field": "json name"}
// (field only when one field is at fault): 400 bad JSON (naming the byte
// offset), unknown kind, missing or foreign field, a server that is not in
// the app; 401 missing/invalid token; 404 unknown app, member or endpoint;
// 405 wrong method (with Allow); 409 something that already exists; 413
// body over MaxBodyBytes; 500 Backend error; 502 leader unreachable while
// forwarding; 503 no leader, or this manager was removed from the Raft
// group; 508 forwarding loop. A Backend chooses the status of its own
// refusals by returning an *Error (409 lock held, 412 last failover too
// recent, or a membership change refused without force: fewer than 3
// voters left, a new voter nobody answers at); any other error is a 500.
//
// member-add and member-remove take "force": true to skip those two
// checks. A member-remove of the leader itself makes the leader hand its
// leadership over and return an error wrapping consensus.ErrNotLeader once
// it knows the new leader's API address, so the request is forwarded to
// the new leader, which removes the old one.
//
// # Actions
//
// POST /v1/actions decodes the body strictly (unknown fields refused),
// validates it fully against Backend.Status (ValidateAction: the fields each
// kind needs and accepts, the app, its servers by name or host:port, the
// members), and only then either runs Backend.Do (on the leader) or forwards
// the original body with the caller's Authorization header to
// LeaderAPIAddr (on a follower), incrementing the X-Mharaft-Hops header. If
// Do returns an error wrapping consensus.ErrNotLeader (leadership lost
// meanwhile) the request is forwarded the same way.
//
// Forwarding is one attempt, never retried and never waiting: no leader
// known (LeaderAPIAddr "") is 503 at once; a request that arrived with
// MaxHops (2) hops already is 508 (so an action is forwarded at most
// twice); a forward that gets no answer from the leader is 502 saying the
// action may or may not have run. A forward is bounded by ActionTimeout,
// and the caller's disconnect does not cancel it.
//
// Do runs with a context that the client's disconnect does not cancel and
// that ends ActionTimeout (30 min) after the action started: a failover is
// never abandoned halfway because mhactl went away. That context is the
// only bound the API puts on Do; the response waits for Do (the server's
// write deadline is extended to ActionTimeout plus a minute). Do is expected
// to block until the action has finished; clients follow its progress on
// GET /v1/apps/{app} (journal). (Package manager runs a switch, failover or
// rejoin in its leadership period rather than in this context: such a run
// ends with the pipeline, or when this manager stops leading, not at
// ActionTimeout.)
//
// # Client
//
// Client{Addrs, Token, HTTP} probes /healthz of each address, prefers the
// leader, and falls back to any live node; its errors name the addresses
// tried and wrap ErrUnreachable when none answered, or are an *Error with
// the HTTP status and the node's message.
//
// Package apitest holds a test double of Backend for unit tests.
package api
