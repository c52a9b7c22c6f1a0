package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The routing endpoints, for load balancers (docs/HAPROXY.md), in the
// spirit of Patroni's GET /primary and /replica:
//
//	GET|HEAD|OPTIONS /v1/apps/{app}/servers/{server}/primary
//	GET|HEAD|OPTIONS /v1/apps/{app}/servers/{server}/replica[?lag=DURATION]
//
// {server} is a server's name (its section in the application's
// configuration) or its host:port. /primary answers 200 when the server
// is the application's writable master, /replica when it is a replica
// replicating from it whose lag is at most lag (DefaultReplicaMaxLag when
// not given); every other case is 503. The body is {"role":"master"},
// {"role":"replica"} or {"role":"unknown"}, nothing else.
//
// They are the documented exception to "every port authenticates its
// peers" (docs/SECURITY.md): no token is needed (one that is sent is
// ignored), they change nothing and tell only the role. They run under the
// listener's limits (Limits) like every route; a request body is refused.
// The answer comes from this manager alone (RoutingBackend: the replicated
// state and this manager's own probes); nothing is forwarded.

// DefaultReplicaMaxLag is the lag limit of /replica without ?lag=.
const DefaultReplicaMaxLag = 10 * time.Second

// maxReplicaLagParam bounds ?lag=.
const maxReplicaLagParam = 24 * time.Hour

// Roles in the body of a routing answer.
const (
	RoutingMaster  = "master"
	RoutingReplica = "replica"
	RoutingUnknown = "unknown"
)

// RoutingBackend is an optional interface of a Backend: what the routing
// endpoints need. A Backend without it answers 503 on them.
type RoutingBackend interface {
	// RoutingView is this manager's view of app for the load balancers;
	// ok is false when there is no such application.
	RoutingView(app string) (view RoutingView, ok bool)
}

// RoutingView is one manager's view of one application's servers, for
// the routing endpoints.
type RoutingView struct {
	// Current is false when this manager's copy of the replicated state
	// may be behind the group's (not the leader nor a follower in recent
	// contact with it): every answer is then 503.
	Current bool
	Servers []RoutingServer
}

// RoutingServer is one server as RoutingView sees it.
type RoutingServer struct {
	Name string
	Addr string // host:port
	// Primary: the server takes the application's writes. At most one
	// server of a view is primary; a view with more has none (the handler
	// answers 503 for all of them).
	Primary bool
	// Replica: the server replicates from the master with both threads
	// running, as this manager last saw it.
	Replica bool
	// Lag is the replica's Seconds_Behind_Master as last discovered; nil
	// when unknown (NULL, or no recent discovery).
	Lag *time.Duration
}

// routingPaths are the patterns of the routing endpoints, by kind.
var routingPaths = map[string]string{
	"primary": "/v1/apps/{app}/servers/{server}/primary",
	"replica": "/v1/apps/{app}/servers/{server}/replica",
}

// newRoutingMux serves the routing endpoints of h; it is consulted before
// the token check (ServeHTTP).
func (h *handler) newRoutingMux() *http.ServeMux {
	mux := http.NewServeMux()
	for kind, p := range routingPaths {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { h.routing(w, r, kind) })
	}
	return mux
}

// serveRouting serves r when it is a routing request and reports whether
// it was one.
func (h *handler) serveRouting(w http.ResponseWriter, r *http.Request) bool {
	if _, pattern := h.open.Handler(r); pattern == "" {
		return false
	}
	h.open.ServeHTTP(w, r)
	return true
}

func (h *handler) routing(w http.ResponseWriter, r *http.Request, kind string) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeRoutingError(w, http.StatusMethodNotAllowed, "method not allowed (use GET, HEAD or OPTIONS)")
		return
	}
	if r.ContentLength != 0 {
		refuseBody(w, r)
		writeRoutingError(w, http.StatusBadRequest, "no request body is accepted")
		return
	}
	maxLag, err := routingQuery(r, kind)
	if err != nil {
		writeRoutingError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.notMember(); err != nil {
		writeRole(w, http.StatusServiceUnavailable, RoutingUnknown)
		return
	}
	rb, ok := h.b.(RoutingBackend)
	if !ok {
		writeRole(w, http.StatusServiceUnavailable, RoutingUnknown)
		return
	}
	view, ok := rb.RoutingView(r.PathValue("app"))
	if !ok {
		writeRoutingError(w, http.StatusNotFound, "no such application or server")
		return
	}
	srv := view.server(r.PathValue("server"))
	if srv == nil {
		writeRoutingError(w, http.StatusNotFound, "no such application or server")
		return
	}
	code, role := routingAnswer(view, srv, kind, maxLag)
	writeRole(w, code, role)
}

// routingAnswer is the status and role for srv of view: 200 only when
// the view is current and srv is the one primary (kind primary) or a
// replica within maxLag (kind replica).
func routingAnswer(view RoutingView, srv *RoutingServer, kind string, maxLag time.Duration) (int, string) {
	if !view.Current {
		return http.StatusServiceUnavailable, RoutingUnknown
	}
	primaries := 0
	for _, s := range view.Servers {
		if s.Primary {
			primaries++
		}
	}
	switch {
	case srv.Primary && primaries == 1:
		if kind == "primary" {
			return http.StatusOK, RoutingMaster
		}
		return http.StatusServiceUnavailable, RoutingMaster
	case srv.Replica && !srv.Primary:
		if kind == "replica" && srv.Lag != nil && *srv.Lag <= maxLag {
			return http.StatusOK, RoutingReplica
		}
		return http.StatusServiceUnavailable, RoutingReplica
	}
	return http.StatusServiceUnavailable, RoutingUnknown
}

// routingQuery checks the query string: nothing on /primary, at most lag
// on /replica (a Go duration such as 500ms or 5s, or whole seconds).
func routingQuery(r *http.Request, kind string) (time.Duration, error) {
	q := r.URL.Query()
	maxLag := DefaultReplicaMaxLag
	for k, vs := range q {
		if kind != "replica" || k != "lag" {
			return 0, fmt.Errorf("unknown query parameter (only lag, on /replica)")
		}
		if len(vs) != 1 {
			return 0, fmt.Errorf("lag given more than once")
		}
		d, err := parseLag(vs[0])
		if err != nil {
			return 0, err
		}
		maxLag = d
	}
	return maxLag, nil
}

// parseLag reads ?lag=: a Go duration ("500ms", "5s", "1m") or whole
// seconds ("5"), from 0 to 24h.
func parseLag(s string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(maxReplicaLagParam/time.Second) {
			return 0, fmt.Errorf("lag out of range (0 to %s)", maxReplicaLagParam)
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("lag is neither a duration (5s, 500ms) nor whole seconds (5)")
		}
	}
	if d < 0 || d > maxReplicaLagParam {
		return 0, fmt.Errorf("lag out of range (0 to %s)", maxReplicaLagParam)
	}
	return d, nil
}

// server finds a server of the view by name or host:port.
func (v RoutingView) server(key string) *RoutingServer {
	for i := range v.Servers {
		if s := &v.Servers[i]; s.Name == key || strings.EqualFold(s.Addr, key) {
			return s
		}
	}
	return nil
}

// writeRole writes the whole body of a routing answer: {"role":"..."}.
func writeRole(w http.ResponseWriter, code int, role string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Role string `json:"role"`
	}{role})
	w.Write(append(b, '\n'))
}

// writeRoutingError is a refusal of a routing request: a fixed short
// message that names no application, server or manager.
func writeRoutingError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(Error{Msg: msg})
	w.Write(append(b, '\n'))
}
