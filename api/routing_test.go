package api_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/metrics"
)

// routingFake is FakeBackend with a routing view per application.
type routingFake struct {
	*apitest.FakeBackend
	views map[string]api.RoutingView
}

func (f *routingFake) RoutingView(app string) (api.RoutingView, bool) {
	v, ok := f.views[app]
	return v, ok
}

func lagOf(d time.Duration) *time.Duration { return &d }

// healthyView is app1 with server1 the primary, server2 a replica 2 s
// behind, server3 a replica 30 s behind and server4 a replica whose lag is
// unknown.
func healthyView() api.RoutingView {
	return api.RoutingView{Current: true, Servers: []api.RoutingServer{
		{Name: "server1", Addr: "127.0.0.1:3306", Primary: true},
		{Name: "server2", Addr: "127.0.0.1:3307", Replica: true, Lag: lagOf(2 * time.Second)},
		{Name: "server3", Addr: "127.0.0.1:3308", Replica: true, Lag: lagOf(30 * time.Second)},
		{Name: "server4", Addr: "127.0.0.1:3309", Replica: true},
	}}
}

// routingAnswer is one answer of a routing endpoint.
type routingAnswer struct {
	code  int
	role  string // from {"role": ...}
	error string // from {"error": ...}
	body  string
	allow string
}

func routingCall(t *testing.T, ts *httptest.Server, method, path, token, body string) routingAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := routingAnswer{code: resp.StatusCode, body: string(b), allow: resp.Header.Get("Allow")}
	if len(b) > 0 {
		var v struct {
			Role  string `json:"role"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
		}
		a.role, a.error = v.Role, v.Error
	}
	if cc := resp.Header.Get("Cache-Control"); a.code != http.StatusUnauthorized && cc != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, cc)
	}
	return a
}

// TestRoutingEndpoints: the load balancers' /primary and /replica answer
// from the backend's view, without a token, with only the role.
func TestRoutingEndpoints(t *testing.T) {
	inLock := healthyView()
	inLock.Servers[0].Primary = false // a failover lock before the new master is active
	twoPrimaries := healthyView()
	twoPrimaries.Servers[1].Primary = true
	stale := healthyView()
	stale.Current = false

	const p = "/v1/apps/app1/servers/"
	tests := []struct {
		name      string
		view      api.RoutingView
		notMember error
		method    string
		path      string
		token     string
		body      string
		code      int
		role      string // want in the body ("" for an error or no body)
		noBody    bool
	}{
		{name: "master is primary", path: p + "server1/primary", code: 200, role: "master"},
		{name: "master by host:port", path: p + "127.0.0.1:3306/primary", code: 200, role: "master"},
		{name: "master is no replica", path: p + "server1/replica", code: 503, role: "master"},
		{name: "replica within default lag", path: p + "server2/replica", code: 200, role: "replica"},
		{name: "replica is no primary", path: p + "server2/primary", code: 503, role: "replica"},
		{name: "replica beyond the lag given", path: p + "server2/replica?lag=1s", code: 503, role: "replica"},
		{name: "lagging replica, default limit", path: p + "server3/replica", code: 503, role: "replica"},
		{name: "lagging replica, lag in seconds", path: p + "server3/replica?lag=30", code: 200, role: "replica"},
		{name: "lagging replica, lag as duration", path: p + "server3/replica?lag=1m", code: 200, role: "replica"},
		{name: "replica with unknown lag", path: p + "server4/replica?lag=24h", code: 503, role: "replica"},
		{name: "during a failover lock no primary", view: inLock, path: p + "server1/primary", code: 503, role: "unknown"},
		{name: "during a failover lock replicas answer", view: inLock, path: p + "server2/replica", code: 200, role: "replica"},
		{name: "two primaries: neither", view: twoPrimaries, path: p + "server1/primary", code: 503, role: "unknown"},
		{name: "two primaries: not the other", view: twoPrimaries, path: p + "server2/primary", code: 503, role: "unknown"},
		{name: "stale manager: master", view: stale, path: p + "server1/primary", code: 503, role: "unknown"},
		{name: "stale manager: replica", view: stale, path: p + "server2/replica", code: 503, role: "unknown"},
		{name: "removed manager", notMember: errors.New("removed from the raft group: run mhactl members add"), path: p + "server1/primary", code: 503, role: "unknown"},
		{name: "unknown app", path: "/v1/apps/nope/servers/server1/primary", code: 404},
		{name: "unknown server", path: p + "server9/primary", code: 404},
		{name: "unknown server replica", path: p + "server9/replica", code: 404},
		{name: "HEAD", method: "HEAD", path: p + "server1/primary", code: 200, noBody: true},
		{name: "HEAD of a replica as primary", method: "HEAD", path: p + "server2/primary", code: 503, noBody: true},
		{name: "OPTIONS (HAProxy's default)", method: "OPTIONS", path: p + "server1/primary", code: 200, role: "master"},
		{name: "a token is ignored", token: "wrong-token", path: p + "server1/primary", code: 200, role: "master"},
		{name: "POST refused", method: "POST", path: p + "server1/primary", code: 405},
		{name: "DELETE refused", method: "DELETE", path: p + "server2/replica", code: 405},
		{name: "bad lag", path: p + "server2/replica?lag=soon", code: 400},
		{name: "negative lag", path: p + "server2/replica?lag=-1s", code: 400},
		{name: "lag over a day", path: p + "server2/replica?lag=25h", code: 400},
		{name: "lag twice", path: p + "server2/replica?lag=1s&lag=2s", code: 400},
		{name: "lag on primary", path: p + "server1/primary?lag=1s", code: 400},
		{name: "unknown parameter", path: p + "server2/replica?max_lag=1s", code: 400},
		{name: "a body", method: "GET", path: p + "server1/primary", body: "{}", code: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.view.Servers == nil {
				tt.view = healthyView()
			}
			if tt.method == "" {
				tt.method = "GET"
			}
			fake := &routingFake{FakeBackend: apitest.NewFakeBackend(), views: map[string]api.RoutingView{"app1": tt.view}}
			fake.NotMemberErr = tt.notMember
			ts := httptest.NewServer(api.NewHandler(fake, api.ServerConfig{Token: testToken}, metrics.New().Registry))
			defer ts.Close()
			a := routingCall(t, ts, tt.method, tt.path, tt.token, tt.body)
			if a.code != tt.code || a.role != tt.role {
				t.Fatalf("%s %s: %d %q, want %d role %q", tt.method, tt.path, a.code, a.body, tt.code, tt.role)
			}
			if tt.noBody && a.body != "" {
				t.Errorf("%s %s: body %q, want none", tt.method, tt.path, a.body)
			}
			if tt.code >= 400 && tt.role == "" && !tt.noBody && a.error == "" {
				t.Errorf("%s %s: refusal %d without an error message: %q", tt.method, tt.path, a.code, a.body)
			}
			if tt.code == 405 && a.allow != "GET, HEAD, OPTIONS" {
				t.Errorf("405 with Allow %q", a.allow)
			}
			// Nothing but the role or a fixed message: no app, server,
			// manager or address of the view, no reason of a removal.
			for _, secret := range []string{"server1", "server2", "server3", "127.0.0.1", "app1", "node1", "raft", "lag_seconds", "members"} {
				if strings.Contains(a.body, secret) {
					t.Errorf("%s %s: body %q reveals %q", tt.method, tt.path, a.body, secret)
				}
			}
			if len(a.body) > 80 {
				t.Errorf("%s %s: body of %d bytes, want a word: %q", tt.method, tt.path, len(a.body), a.body)
			}
		})
	}
}

// TestRoutingNoBackend: a Backend without RoutingView answers 503, and
// the routing paths open nothing else: the rest of the API still needs
// the token.
func TestRoutingNoBackend(t *testing.T) {
	ts := httptest.NewServer(api.NewHandler(apitest.NewFakeBackend(), api.ServerConfig{Token: testToken}, metrics.New().Registry))
	defer ts.Close()
	if a := routingCall(t, ts, "GET", "/v1/apps/app1/servers/server1/primary", "", ""); a.code != 503 || a.role != "unknown" {
		t.Errorf("primary without a routing backend: %d %q, want 503 unknown", a.code, a.body)
	}
	for _, path := range []string{"/v1/apps/app1", "/v1/apps/app1/servers/server1", "/v1/apps/app1/servers/server1/primary/x",
		"/v1/apps/app1/servers/server1/role", "/v1/status"} {
		if a := routingCall(t, ts, "GET", path, "", ""); a.code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %q, want 401", path, a.code, a.body)
		}
	}
}
