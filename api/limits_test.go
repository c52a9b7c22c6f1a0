package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/metrics"
)

// limitedServer serves the API with short timeouts on a real listener,
// as a manager does (api.NewHTTPServer, api.LimitListener).
func limitedServer(t *testing.T, lim api.Limits) string {
	t.Helper()
	return limitedServerOf(t, apitest.NewFakeBackend(), lim)
}

func limitedServerOf(t *testing.T, fake *apitest.FakeBackend, lim api.Limits) string {
	t.Helper()
	h := api.NewHandler(fake, api.ServerConfig{Token: testToken}, metrics.New().Registry)
	srv := api.NewHTTPServer(h, lim, nil)
	ln := listen(t)
	go srv.Serve(api.LimitListener(ln, lim))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// heldFor sends raw on a new connection, then reads until the server
// closes it (or giveUp passes); it returns what the server answered and
// how long it kept the connection.
func heldFor(t *testing.T, addr, raw string, giveUp time.Duration) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(start.Add(giveUp))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the connection after %v (answered %q)", giveUp, b)
	}
	return string(b), time.Since(start)
}

func TestSlowClientsCannotHoldTheAPI(t *testing.T) {
	lim := api.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, IdleTimeout: 2 * time.Second}
	addr := limitedServer(t, lim)
	// Far above the timeouts, far below the two minutes of the report.
	const giveUp = 15 * time.Second
	auth := "Authorization: Bearer " + testToken + "\r\n"
	cases := []struct {
		name, raw, want string
	}{
		{"headers never finished", "GET /v1/status HTTP/1.1\r\nHost: x\r\n", ""},
		{"large body declared, one byte sent, no token",
			"POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n{",
			"HTTP/1.1 401"},
		{"body over the limit declared, no token",
			"POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{",
			`"request body of 100000000 bytes is larger than the limit of 4259840 bytes"`},
		{"action body over the API's limit declared, no token",
			"POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{",
			`"request body of 2000000 bytes is larger than the limit of 1048576 bytes"`},
		{"forwarding endpoint, body over 4 MB declared",
			"POST /raft/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{",
			`request body of 100000000 bytes is larger than the limit of`},
		{"token, body stalled after one byte",
			"POST /v1/actions HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 1000\r\n\r\n{", ""},
		{"idle kept-alive connection",
			"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, held := heldFor(t, addr, tc.raw, giveUp)
			if !strings.Contains(got, tc.want) {
				t.Errorf("answer %q, want it to contain %q", got, tc.want)
			}
			t.Logf("held %v; answer %q", held.Round(time.Millisecond), firstLine(got))
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// 50 clients that stall (headers never finished, a large body declared
// and never sent) do not stop a status read from answering.
func TestStalledClientsDoNotStopStatus(t *testing.T) {
	addr := limitedServer(t, api.Limits{})
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		raw := "GET /v1/status HTTP/1.1\r\nHost: x\r\n"
		if i%2 == 1 {
			raw = fmt.Sprintf("POST /v1/actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 500000\r\n\r\n{", testToken)
		}
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	cl := &api.Client{Addrs: []string{addr}, Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Status(ctx); err != nil {
		t.Fatalf("status with 50 stalled clients: %v", err)
	}
}

// An authenticated action answers after the server's read and write
// timeouts: its deadlines are extended once its token is checked.
func TestLongActionOutlivesTimeouts(t *testing.T) {
	fake := apitest.NewFakeBackend()
	fake.Phases = []api.JournalEntry{{Phase: "fence"}}
	fake.PhaseWait = 2500 * time.Millisecond // nobody reads the status: Do takes this long
	lim := api.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
	addr := limitedServerOf(t, fake, lim)
	cl := &api.Client{Addrs: []string{addr}, Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cl.Do(ctx, api.Action{Kind: api.ActionPause, App: "app1"})
	if err != nil || !res.OK {
		t.Fatalf("action longer than the write timeout: %+v, %v", res, err)
	}
}
