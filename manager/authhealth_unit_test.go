package manager

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/fsm"
)

func TestServerHealth(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const addr = "127.0.0.1:3306"
	denied := "connect to server1(127.0.0.1:3306) as mha: Error 1045 (28000): Access denied for user 'mha'@'localhost' (using password: YES)"
	app := &config.App{PingInterval: time.Second, ConnectTimeout: time.Second} // window 3 s, fresh for 6 s
	obs := func(kind string, age time.Duration) fsm.Observation {
		return fsm.Observation{Kind: kind, Detail: "connect: " + denied, LoggedAt: now.Add(-age)}
	}
	tests := []struct {
		name       string
		t          fsm.ServerStatus
		discovered bool
		obs        map[string]fsm.Observation // manager -> its observation of addr
		health     string
		detail     string // "" or a part of the detail
	}{
		{"not discovered yet", fsm.ServerStatus{}, false, nil, api.HealthUnknown, ""},
		{"read by discovery", fsm.ServerStatus{Reachable: true}, true, nil, api.HealthOK, ""},
		{"refused login", fsm.ServerStatus{Error: denied, ErrorKind: dialect.KindAuthError}, true, nil, api.HealthAuthError, "Access denied for user 'mha'"},
		{"connection refused", fsm.ServerStatus{Error: "connect: connection refused", ErrorKind: dialect.KindRefused}, true, nil, api.HealthUnreachable, "connection refused"},
		{"summary of an older leader (no kind)", fsm.ServerStatus{Error: denied}, true, nil, api.HealthUnreachable, "Access denied"},
		{"one manager's probe refused", fsm.ServerStatus{Reachable: true}, true,
			map[string]fsm.Observation{"m2": obs(dialect.KindAuthError, time.Second), "m1": obs(dialect.KindOK, 0)},
			api.HealthAuthError, "manager m2: connect: connect to server1"},
		{"a stale refusal does not count", fsm.ServerStatus{Reachable: true}, true,
			map[string]fsm.Observation{"m3": obs(dialect.KindAuthError, time.Minute)}, api.HealthOK, ""},
		{"discovery and a probe refused", fsm.ServerStatus{Error: denied, ErrorKind: dialect.KindAuthError}, true,
			map[string]fsm.Observation{"m2": obs(dialect.KindAuthError, 0)}, api.HealthAuthError, "(using password: YES); manager m2: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fsm.AppState{Observations: map[string]map[string]fsm.Observation{}}
			for mgr, o := range tc.obs {
				st.Observations[mgr] = map[string]fsm.Observation{addr: o}
			}
			h, d := serverHealth(st, app, addr, tc.t, tc.discovered, now)
			if h != tc.health || !strings.Contains(d, tc.detail) || (tc.detail == "" && d != "" && h == api.HealthOK) {
				t.Fatalf("serverHealth = %q, %q; want %q with %q", h, d, tc.health, tc.detail)
			}
		})
	}
}

// TestNoteLoginLogsStartAndEnd: one WARN when the login starts being
// refused, one INFO when it works again, nothing in between or for an
// unreachable server.
func TestNoteLoginLogsStartAndEnd(t *testing.T) {
	var buf bytes.Buffer
	m := &Manager{log: slog.New(slog.NewTextHandler(&buf, nil)), warned: map[string]bool{}}
	steps := []loginState{loginAccepted, loginRefused, loginRefused, loginUnknown, loginRefused, loginAccepted, loginAccepted}
	for _, s := range steps {
		m.noteLogin("app1", "server2", "mha", loginByDiscovery, s, "Error 1045 (28000): Access denied for user 'mha'@'h'", 3)
	}
	// Another source keeps its own state.
	m.noteLogin("app1", "server2", "mha", loginByProbe, loginRefused, "Error 1045", 0)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="server refuses the manager's login" app=app1 server=server2 user=mha source=discovery error="Error 1045 (28000): Access denied for user 'mha'@'h'"`,
		`level=INFO msg="server accepts the manager's login again" app=app1 server=server2 user=mha source=discovery epoch=3`,
		`level=WARN msg="server refuses the manager's login" app=app1 server=server2 user=mha source=probe`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to contain %s", i, lines[i], w)
		}
	}
}

func TestLoginStateOf(t *testing.T) {
	for kind, want := range map[string]loginState{
		dialect.KindOK: loginAccepted, dialect.KindAuthError: loginRefused, dialect.KindRefused: loginUnknown,
		dialect.KindAliveRefusing: loginUnknown, dialect.KindTimeout: loginUnknown,
	} {
		if got := loginStateOf(kind); got != want {
			t.Errorf("loginStateOf(%q) = %v, want %v", kind, got, want)
		}
	}
}
