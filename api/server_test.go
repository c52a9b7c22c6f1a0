package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/metrics"
	"github.com/mharaft/mharaft/testbed"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const testToken = "s3cret-token"

// serve starts an API server in front of fake with the test token.
func serve(t *testing.T, fake *apitest.FakeBackend, cfg api.ServerConfig) *httptest.Server {
	t.Helper()
	if cfg.Token == "" && cfg.TokenFile == "" {
		cfg.Token = testToken
	}
	ts := httptest.NewServer(api.NewHandler(fake, cfg, metrics.New().Registry))
	t.Cleanup(ts.Close)
	return ts
}

type answer struct {
	code   int
	header http.Header
	body   []byte
	err    api.Error
}

func call(t *testing.T, method, url, token, body string, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, header: resp.Header}
	a.body, _ = io.ReadAll(resp.Body)
	if a.code >= 400 {
		if err := json.Unmarshal(a.body, &a.err); err != nil {
			t.Fatalf("%s %s: error answer %d is not JSON: %q", method, url, a.code, a.body)
		}
		if a.err.Msg == "" {
			t.Fatalf("%s %s: error answer %d has no message: %q", method, url, a.code, a.body)
		}
	}
	return a
}

func TestAuthentication(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{})
	tests := []struct {
		name, method, path, auth, body string
		want                           int
		wantMsg                        string
	}{
		{"status without token", "GET", "/v1/status", "", "", 401, "missing bearer token"},
		{"action without token", "POST", "/v1/actions", "", `{"kind":"ack","app":"app1"}`, 401, "missing bearer token"},
		{"action with wrong token", "POST", "/v1/actions", "Bearer nope", `{"kind":"ack","app":"app1"}`, 401, "invalid bearer token"},
		{"token prefix only", "GET", "/v1/status", "Bearer " + testToken[:4], "", 401, "invalid bearer token"},
		{"basic auth", "GET", "/v1/status", "Basic " + testToken, "", 401, "missing bearer token"},
		{"metrics without token", "GET", "/metrics", "", "", 401, "missing bearer token"},
		{"unknown path without token", "GET", "/v1/nothing", "", "", 401, "missing bearer token"},
		{"healthz needs no token", "GET", "/healthz", "", "", 200, ""},
		{"status with token", "GET", "/v1/status", "Bearer " + testToken, "", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fake.StatusCalls()
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			a := call(t, tc.method, ts.URL+tc.path, "", tc.body, hdr...)
			if a.code != tc.want {
				t.Fatalf("got %d %s, want %d", a.code, a.body, tc.want)
			}
			if tc.want == 401 {
				if !strings.Contains(a.err.Msg, tc.wantMsg) {
					t.Errorf("message %q does not say %q", a.err.Msg, tc.wantMsg)
				}
				if a.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if n := fake.StatusCalls(); n != before {
					t.Errorf("backend Status called %d times by a refused request", n-before)
				}
			}
		})
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("backend ran %d actions for unauthenticated requests: %+v", len(calls), calls)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/token"
	if err := writeFile(file, "  from-file-0123456789\n"); err != nil {
		t.Fatal(err)
	}
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{TokenFile: file})
	if a := call(t, "GET", ts.URL+"/v1/status", "from-file-0123456789", ""); a.code != 200 {
		t.Fatalf("token from file refused: %d %s", a.code, a.body)
	}
	// A missing token file fails closed: nothing is served without auth.
	ts2 := serve(t, fake, api.ServerConfig{TokenFile: dir + "/missing"})
	for _, tok := range []string{"", "from-file-0123456789"} {
		if a := call(t, "GET", ts2.URL+"/v1/status", tok, ""); a.code != 500 || !strings.Contains(a.err.Msg, "token") {
			t.Fatalf("missing token file, token %q: got %d %s, want 500 naming the token", tok, a.code, a.body)
		}
	}
	// A token file others can read, or a short token, fails closed too,
	// with the message that says how to fix it.
	open, short := dir+"/open", dir+"/short"
	writeFile(open, "from-file-0123456789")
	os.Chmod(open, 0o644)
	writeFile(short, "s3cret-token")
	for file, want := range map[string]string{
		open:  "API server misconfigured: token file " + open + " has mode 0644: group or others can access it and it holds a secret; run `chmod 600 " + open + "`",
		short: "API server misconfigured: token file " + short + " holds a 12-byte token, shorter than the 16 bytes required; make one with `head -c 32 /dev/urandom | base64 > " + short + " && chmod 600 " + short + "`",
	} {
		ts := serve(t, fake, api.ServerConfig{TokenFile: file})
		if a := call(t, "GET", ts.URL+"/v1/status", "s3cret-token", ""); a.code != 500 || a.err.Msg != want {
			t.Errorf("token file %s: got %d %q, want 500 %q", file, a.code, a.err.Msg, want)
		}
	}
}

func TestActionValidation(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{})
	tests := []struct {
		name, body string
		code       int
		field      string
		msg        string
	}{
		{"empty body", ``, 400, "", "empty request body"},
		{"truncated JSON", `{"kind":"ack","app":`, 400, "", "unexpected end of input at byte offset 20"},
		{"syntax error", `{"kind":"ack" "app":"app1"}`, 400, "", "malformed JSON at byte offset 15"},
		{"wrong type", `{"kind":"ack","app":7}`, 400, "app", `field "app": cannot use a JSON number as string`},
		{"unknown field", `{"kind":"ack","app":"app1","forse":true}`, 400, "forse", `unknown field "forse"`},
		{"force on another kind", `{"kind":"ack","app":"app1","force":true}`, 400, "force", "ack does not take force"},
		{"trailing data", `{"kind":"ack","app":"app1"} {}`, 400, "", "unexpected data after the action object"},
		{"missing kind", `{"app":"app1"}`, 400, "kind", "missing action kind"},
		{"unknown kind", `{"kind":"explode","app":"app1"}`, 400, "kind", `unknown action kind "explode"`},
		{"unknown app", `{"kind":"ack","app":"app9"}`, 404, "app", `unknown application "app9" (known: app1)`},
		{"missing app", `{"kind":"pause"}`, 400, "app", "pause needs app"},
		{"switch to unknown server", `{"kind":"switch","app":"app1","new_master":"server9"}`, 400, "new_master", `app1 has no server "server9"`},
		{"switch to the master", `{"kind":"switch","app":"app1","new_master":"127.0.0.1:3306"}`, 400, "new_master", "already the master"},
		{"field of another kind", `{"kind":"ack","app":"app1","new_master":"server2"}`, 400, "new_master", "ack does not take new_master"},
		{"failover to the dead master", `{"kind":"failover","app":"app1","new_master":"server1"}`, 400, "new_master", "is the dead master"},
		{"failover unknown dead master", `{"kind":"failover","app":"app1","dead_master":"x"}`, 400, "dead_master", `no server "x"`},
		{"rejoin unknown host", `{"kind":"rejoin","app":"app1","host":"server7"}`, 400, "host", `no server "server7"`},
		{"remove the master", `{"kind":"server-remove","app":"app1","host":"server1"}`, 400, "host", "is the master of app1"},
		{"add without port", `{"kind":"server-add","app":"app1","server":{"name":"server4","hostname":"h"}}`, 400, "server.port", "not a TCP port"},
		{"add existing name", `{"kind":"server-add","app":"app1","server":{"name":"server2","hostname":"h","port":3310}}`, 409, "server.name", "already has a server named server2"},
		{"add bad port type", `{"kind":"server-add","app":"app1","server":{"name":"s","hostname":"h","port":"x"}}`, 400, "server.port", "cannot use a JSON string"},
		{"add existing member", `{"kind":"member-add","member_id":"node2","member_addr":"127.0.0.1:7002"}`, 409, "member_id", "already a member"},
		{"remove unknown member", `{"kind":"member-remove","member_id":"node9"}`, 404, "member_id", `no manager "node9"`},
		{"member-add without addr", `{"kind":"member-add","member_id":"node4"}`, 400, "member_addr", "member-add needs member_addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, "POST", ts.URL+"/v1/actions", testToken, tc.body)
			if a.code != tc.code {
				t.Fatalf("got %d %s, want %d", a.code, a.body, tc.code)
			}
			if a.err.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", a.err.Field, tc.field, a.err.Msg)
			}
			if !strings.Contains(a.err.Msg, tc.msg) {
				t.Errorf("message %q does not say %q", a.err.Msg, tc.msg)
			}
		})
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("backend ran %d invalid actions: %+v", len(calls), calls)
	}
}

func TestValidActionsRun(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{})
	bodies := []string{
		`{"kind":"ack","app":"app1","reason":"checked"}`,
		`{"kind":"pause","app":"app1"}`,
		`{"kind":"resume","app":"app1"}`,
		`{"kind":"switch","app":"app1","new_master":"server2","orig_master_is_new_slave":true}`,
		`{"kind":"failover","app":"app1","dead_master":"server1","new_master":"127.0.0.1:3308","ignore_last_failover":true}`,
		`{"kind":"rejoin","app":"app1","host":"server1"}`,
		`{"kind":"server-add","app":"app1","server":{"name":"server4","hostname":"127.0.0.1","port":3309,"candidate_master":true}}`,
		`{"kind":"server-remove","app":"app1","host":"server3"}`,
		`{"kind":"member-add","member_id":"node4","member_addr":"127.0.0.1:7004"}`,
		`{"kind":"member-remove","member_id":"node3"}`,
		`{"kind":"member-remove","member_id":"node2","force":true}`,
		`{"kind":"member-add","member_id":"node5","member_addr":"127.0.0.1:7005","force":true}`,
		`{"kind":"switch","app":"app1"}`, // the new master is elected
	}
	for _, body := range bodies {
		a := call(t, "POST", ts.URL+"/v1/actions", testToken, body)
		if a.code != 200 {
			t.Fatalf("%s: got %d %s", body, a.code, a.body)
		}
		var res api.ActionResult
		if err := json.Unmarshal(a.body, &res); err != nil || !res.OK {
			t.Fatalf("%s: result %s (%v)", body, a.body, err)
		}
	}
	calls := fake.Calls()
	if len(calls) != len(bodies) {
		t.Fatalf("backend ran %d actions, want %d", len(calls), len(bodies))
	}
	if c := calls[3]; c.Kind != api.ActionSwitch || c.NewMaster != "server2" || !c.OrigMasterIsNewSlave {
		t.Errorf("switch reached the backend as %+v", c)
	}
	if c := calls[6]; c.Server == nil || c.Server.Port != 3309 || !c.Server.CandidateMaster {
		t.Errorf("server-add reached the backend as %+v", c)
	}
	if c := calls[9]; c.Force {
		t.Errorf("member-remove without force reached the backend as %+v", c)
	}
	if c := calls[10]; c.Kind != api.ActionMemberRemove || c.MemberID != "node2" || !c.Force {
		t.Errorf("member-remove with force reached the backend as %+v", c)
	}
	if c := calls[11]; c.Kind != api.ActionMemberAdd || !c.Force {
		t.Errorf("member-add with force reached the backend as %+v", c)
	}
	if c := calls[12]; c.Kind != api.ActionSwitch || c.NewMaster != "" {
		t.Errorf("switch without new_master reached the backend as %+v", c)
	}
}

// TestRemovedMemberServesNoStatus: a manager that says it is not a member
// of the Raft group answers 503 on /healthz (removed, with the way back),
// serves no status, history or action (its state is stale), still serves
// /metrics, and answers normally again once it is a member.
func TestRemovedMemberServesNoStatus(t *testing.T) {
	fake := apitest.NewFakeBackend()
	fake.NotMemberErr = errors.New("node1 was removed from the raft group: to bring it back, run `mhactl members add node1 127.0.0.1:7001`")
	ts := serve(t, fake, api.ServerConfig{})

	a := call(t, "GET", ts.URL+"/healthz", "", "")
	var h api.Health
	if err := json.Unmarshal(a.body, &h); err != nil {
		t.Fatal(err)
	}
	if a.code != http.StatusServiceUnavailable || h.OK || !h.Removed || h.Leader || !strings.Contains(h.Error, "mhactl members add node1") {
		t.Fatalf("healthz of a removed node: %d %s, want 503 ok=false removed=true naming the way back", a.code, a.body)
	}
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/v1/status", ""},
		{"GET", "/v1/apps/app1", ""},
		{"GET", "/v1/history", ""},
		{"POST", "/v1/actions", `{"kind":"pause","app":"app1"}`},
	} {
		a := call(t, rq.method, ts.URL+rq.path, testToken, rq.body)
		if a.code != http.StatusServiceUnavailable || !strings.Contains(a.err.Msg, "removed from the raft group") {
			t.Fatalf("%s %s on a removed node: %d %s, want 503 saying it was removed", rq.method, rq.path, a.code, a.body)
		}
	}
	if a := call(t, "GET", ts.URL+"/v1/status", "wrong", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("a wrong token on a removed node: %d, want 401 first", a.code)
	}
	if a := call(t, "GET", ts.URL+"/metrics", testToken, ""); a.code != http.StatusOK {
		t.Fatalf("metrics of a removed node: %d %s", a.code, a.body)
	}
	if n := len(fake.Calls()); n != 0 || fake.StatusCalls() != 0 {
		t.Fatalf("the backend of a removed node ran %d actions and %d status reads", n, fake.StatusCalls())
	}
	// The client passes over a removed node when it looks for one.
	c := &api.Client{Addrs: []string{ts.URL}, Token: testToken}
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("client status via only a removed node: %v, want an error saying it was removed", err)
	}

	fake.Lock()
	fake.NotMemberErr = nil
	fake.Unlock()
	if a := call(t, "GET", ts.URL+"/healthz", "", ""); a.code != 200 {
		t.Fatalf("healthz once a member again: %d %s", a.code, a.body)
	}
	if a := call(t, "GET", ts.URL+"/v1/status", testToken, ""); a.code != 200 {
		t.Fatalf("status once a member again: %d %s", a.code, a.body)
	}
}

func TestRequestErrors(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{MaxBodyBytes: 64})
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"GET on actions", "GET", "/v1/actions", "", 405, "method GET not allowed on /v1/actions (use POST)"},
		{"DELETE on status", "DELETE", "/v1/status", "", 405, "use GET"},
		{"POST on metrics", "POST", "/metrics", "{}", 405, "use GET"},
		{"body too large", "POST", "/v1/actions", `{"kind":"ack","app":"app1","reason":"` + strings.Repeat("x", 100) + `"}`, 413, "request body of 139 bytes is larger than the limit of 64 bytes"},
		{"unknown app", "GET", "/v1/apps/app9", "", 404, `unknown application "app9"`},
		{"history of unknown app", "GET", "/v1/history?app=app9", "", 404, `unknown application "app9"`},
		{"unknown endpoint", "GET", "/v2/status", "", 404, "no such endpoint /v2/status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, tc.method, ts.URL+tc.path, testToken, tc.body)
			if a.code != tc.code || !strings.Contains(a.err.Msg, tc.msg) {
				t.Fatalf("got %d %s, want %d saying %q", a.code, a.body, tc.code, tc.msg)
			}
			if tc.code == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("backend ran %d actions", n)
	}
}

func TestReads(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{})
	var app api.AppStatus
	a := call(t, "GET", ts.URL+"/v1/apps/app1", testToken, "")
	if a.code != 200 || json.Unmarshal(a.body, &app) != nil || app.Master != "server1" || len(app.Servers) != 3 {
		t.Fatalf("GET /v1/apps/app1: %d %s", a.code, a.body)
	}
	var hist []api.HistoryEntry
	a = call(t, "GET", ts.URL+"/v1/history?app=app1", testToken, "")
	if a.code != 200 || json.Unmarshal(a.body, &hist) != nil || len(hist) != 2 || hist[1].Kind != "switch" {
		t.Fatalf("GET /v1/history: %d %s", a.code, a.body)
	}
	var h api.Health
	a = call(t, "GET", ts.URL+"/healthz", "", "")
	if a.code != 200 || json.Unmarshal(a.body, &h) != nil || !h.OK || !h.Leader {
		t.Fatalf("GET /healthz: %d %s", a.code, a.body)
	}
}

// follower returns a fake that is not the leader and names leaderURL.
func follower(leaderURL string) *apitest.FakeBackend {
	f := apitest.NewFakeBackend()
	f.Leader = false
	f.LeaderA = leaderURL
	f.State.Node = "node2"
	return f
}

func TestFollowerForwardsToLeader(t *testing.T) {
	leader := apitest.NewFakeBackend()
	var gotHops, gotAuth string
	lts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHops, gotAuth = r.Header.Get(api.HopsHeader), r.Header.Get("Authorization")
		api.NewHandler(leader, api.ServerConfig{Token: testToken}, nil).ServeHTTP(w, r)
	}))
	defer lts.Close()
	// The follower knows the leader as host:port, as raft reports it.
	fol := follower(strings.TrimPrefix(lts.URL, "http://"))
	fts := serve(t, fol, api.ServerConfig{})

	a := call(t, "POST", fts.URL+"/v1/actions", testToken, `{"kind":"pause","app":"app1","reason":"maintenance"}`)
	if a.code != 200 {
		t.Fatalf("forwarded action: %d %s", a.code, a.body)
	}
	if got := a.header.Get(api.ForwardedHeader); got != strings.TrimPrefix(lts.URL, "http://") {
		t.Errorf("%s = %q, want the leader's address", api.ForwardedHeader, got)
	}
	if n := len(fol.Calls()); n != 0 {
		t.Errorf("follower ran %d actions itself", n)
	}
	calls := leader.Calls()
	if len(calls) != 1 || calls[0].Kind != api.ActionPause || calls[0].Reason != "maintenance" {
		t.Fatalf("leader ran %+v, want the pause", calls)
	}
	if gotHops != "1" || gotAuth != "Bearer "+testToken {
		t.Errorf("leader saw hops %q auth %q, want 1 and the caller's token", gotHops, gotAuth)
	}

	// A forwarded request keeps the caller's token: a wrong one is refused
	// by the follower before anything is forwarded.
	if a := call(t, "POST", fts.URL+"/v1/actions", "wrong", `{"kind":"ack","app":"app1"}`); a.code != 401 {
		t.Fatalf("wrong token through the follower: %d", a.code)
	}
	// A bad request is refused by the follower, not forwarded.
	if a := call(t, "POST", fts.URL+"/v1/actions", testToken, `{"kind":"switch","app":"app1","new_master":"server9"}`); a.code != 400 {
		t.Fatalf("bad request through the follower: %d", a.code)
	}
	if n := len(leader.Calls()); n != 1 {
		t.Fatalf("leader ran %d actions, want still 1", n)
	}
}

func TestForwardLoopStops(t *testing.T) {
	// Two followers that each believe the other is the leader.
	a, b := follower(""), follower("")
	ats, bts := serve(t, a, api.ServerConfig{}), serve(t, b, api.ServerConfig{})
	a.Lock()
	a.LeaderA = bts.URL
	a.Unlock()
	b.Lock()
	b.LeaderA = ats.URL
	b.Unlock()

	ans := call(t, "POST", ats.URL+"/v1/actions", testToken, `{"kind":"ack","app":"app1"}`)
	if ans.code != http.StatusLoopDetected || !strings.Contains(ans.err.Msg, "forwarded 2 times") {
		t.Fatalf("got %d %s, want 508 naming the hops", ans.code, ans.body)
	}
	if len(a.Calls())+len(b.Calls()) != 0 {
		t.Fatal("an action ran on a follower")
	}
	// A request claiming to be past the limit is not forwarded at all.
	ans = call(t, "POST", ats.URL+"/v1/actions", testToken, `{"kind":"ack","app":"app1"}`, api.HopsHeader, "5")
	if ans.code != http.StatusLoopDetected {
		t.Fatalf("hops 5: got %d", ans.code)
	}
}

func TestNoLeader(t *testing.T) {
	fol := follower("")
	ts := serve(t, fol, api.ServerConfig{})
	a := call(t, "POST", ts.URL+"/v1/actions", testToken, `{"kind":"ack","app":"app1"}`)
	if a.code != 503 || !strings.Contains(a.err.Msg, "no raft leader") {
		t.Fatalf("got %d %s, want 503 saying there is no leader", a.code, a.body)
	}
	if n := len(fol.Calls()); n != 0 {
		t.Fatalf("follower ran %d actions", n)
	}
	// Reads still work on a follower without a leader.
	if a := call(t, "GET", ts.URL+"/v1/status", testToken, ""); a.code != 200 {
		t.Fatalf("status without a leader: %d", a.code)
	}
}

func TestBackendErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"lock held", api.Errorf(409, "", "failover lock of app1 held by node2 (epoch 3)"), 409, "held by node2"},
		{"precondition", api.Errorf(412, "ignore_last_failover", "last failover 3 minutes ago"), 412, "last failover"},
		{"plain error", errors.New("raft apply: timeout"), 500, "raft apply: timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			fake.Err = tc.err
			ts := serve(t, fake, api.ServerConfig{})
			a := call(t, "POST", ts.URL+"/v1/actions", testToken, `{"kind":"ack","app":"app1"}`)
			if a.code != tc.code || !strings.Contains(a.err.Msg, tc.msg) {
				t.Fatalf("got %d %s, want %d saying %q", a.code, a.body, tc.code, tc.msg)
			}
		})
	}
}

func TestLostLeadershipForwards(t *testing.T) {
	newLeader := apitest.NewFakeBackend()
	nts := serve(t, newLeader, api.ServerConfig{})
	old := apitest.NewFakeBackend() // believes it leads, but Do finds out it does not
	old.Err = consensus.ErrNotLeader
	old.LeaderA = nts.URL
	ots := serve(t, old, api.ServerConfig{})
	a := call(t, "POST", ots.URL+"/v1/actions", testToken, `{"kind":"resume","app":"app1"}`)
	if a.code != 200 || len(newLeader.Calls()) != 1 {
		t.Fatalf("got %d %s; new leader ran %d actions", a.code, a.body, len(newLeader.Calls()))
	}
}

func TestMetricsEndpoint(t *testing.T) {
	m := metrics.New()
	m.SetRaftRole("leader")
	m.SetRaftTerm(7)
	m.ObserveProbe("app1", "server1", 3*time.Millisecond)
	m.ProbeFailed("app1", "server1", "timeout")
	m.Verdict("app1", "Healthy")
	m.Failover("app1", "switch", "success")
	m.ObservePhase("check_repl", 40*time.Millisecond)
	m.SetReplicaLag("app1", "server2", 3)

	for _, open := range []bool{false, true} {
		ts := httptest.NewServer(api.NewHandler(apitest.NewFakeBackend(), api.ServerConfig{Token: testToken, MetricsOpen: open}, m.Registry))
		defer ts.Close()
		if a := call(t, "GET", ts.URL+"/metrics", "", ""); (a.code == 200) != open {
			t.Fatalf("MetricsOpen=%v: /metrics without token answered %d", open, a.code)
		}
		a := call(t, "GET", ts.URL+"/metrics", testToken, "")
		if a.code != 200 {
			t.Fatalf("/metrics: %d", a.code)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(string(a.body)))
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		for _, name := range []string{
			"mharaft_raft_role", "mharaft_raft_term", "mharaft_probe_duration_seconds",
			"mharaft_probe_failures_total", "mharaft_verdicts_total", "mharaft_failovers_total",
			"mharaft_failover_phase_duration_seconds", "mharaft_replica_lag_seconds", "go_goroutines",
		} {
			if fams[name] == nil {
				t.Errorf("/metrics has no family %s", name)
			}
		}
		if got := fams["mharaft_raft_term"].GetMetric()[0].GetGauge().GetValue(); got != 7 {
			t.Errorf("raft term %v, want 7", got)
		}
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certs, err := testbed.WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := certs.CertFile, certs.KeyFile
	cfg := api.ServerConfig{Token: testToken, TLSCert: cert, TLSKey: key, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, api.NewHandler(apitest.NewFakeBackend(), cfg, nil), cfg) }()

	pool, err := api.LoadCertPool(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &api.Client{Addrs: []string{"https://" + ln.Addr().String()}, Token: testToken, HTTP: tlsClient(pool)}
	st, err := c.Status(context.Background())
	if err != nil || st.Node != "node1" {
		t.Fatalf("status over TLS: %v %+v", err, st)
	}
	// Plain HTTP to the TLS port gets no API answer.
	plain := &api.Client{Addrs: []string{ln.Addr().String()}, Token: testToken}
	if _, err := plain.Status(context.Background()); err == nil {
		t.Fatal("plain HTTP to the TLS server succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}
