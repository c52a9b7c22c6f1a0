package demo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	managerpkg "github.com/mharaft/mharaft/manager"
	"github.com/mharaft/mharaft/testbed"
)

// The demo's HAProxy: the application writes through it, as it would in
// production (docs/HAPROXY.md), and the demo measures what that client
// sees of the failover.

// writerTable is the table the application writes through HAProxy.
const writerTable = "haproxy_writes"

// startHAProxy starts HAProxy in front of the sandbox with the managers'
// routing endpoints as its health checks, shows them, and waits until it
// routes writes to the master.
func (r *run) startHAProxy(ctx context.Context) error {
	o := testbed.HAProxyOptions{App: AppName, MaxLag: 10 * time.Second}
	for _, s := range r.db.Servers {
		o.Servers = append(o.Servers, testbed.HAProxyServer{Name: s.Name(), Addr: s.Addr()})
	}
	for _, m := range r.managers {
		o.Managers = append(o.Managers, m.HTTPAddr)
	}
	for _, addr := range []*string{&o.WriteAddr, &o.ReadAddr} {
		p, err := testbed.FreePort("127.0.0.1")
		if err != nil {
			return fmt.Errorf("pick a port for HAProxy: %w", err)
		}
		*addr = fmt.Sprintf("127.0.0.1:%d", p)
	}
	dir := r.dir + "/haproxy"
	r.header("HAProxy in front of %s: it asks the managers which server is the master (docs/HAPROXY.md)", AppName)
	r.say("every manager answers, without a token, GET /v1/apps/%s/servers/SERVER/primary (and /replica):", AppName)
	m := r.managers[0]
	for _, s := range r.db.Servers {
		for _, kind := range []string{"primary", "replica"} {
			code, body := routingAnswer(ctx, m.HTTPAddr, s.Name(), kind)
			r.say("  GET http://%s/v1/apps/%s/servers/%s/%-7s -> %d %s", m.HTTPAddr, AppName, s.Name(), kind, code, body)
		}
	}
	r.say("")
	r.say("$ haproxy -db -f %s/haproxy.cfg > %s/haproxy.log 2>&1 &", dir, dir)
	hp, err := testbed.StartHAProxy(ctx, dir, o)
	if err != nil {
		return fmt.Errorf("start HAProxy: %w", err)
	}
	r.haproxy = hp
	if text, err := os.ReadFile(hp.Conf); err == nil {
		r.say("its write backend: one server line per database server and manager, checked through that manager")
		fmt.Fprint(r.out, indent(backendOf(string(text), "backend "+AppName+"_primary"), "  "))
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		up, err := hp.UpServers("primary")
		if err == nil && slices.Equal(up, []string{r.db.Master().Name()}) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HAProxy routes writes to %v (%v), not to the master %s, after 15 s; log %s", up, err, r.db.Master().Name(), hp.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.say("HAProxy routes writes (%s) to %s and reads (%s) to the replicas within 10 s of lag", o.WriteAddr, r.db.Master().Name(), o.ReadAddr)
	return nil
}

// routingAnswer asks a manager's routing endpoint, as HAProxy does.
func routingAnswer(ctx context.Context, addr, server, kind string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/apps/"+AppName+"/servers/"+server+"/"+kind, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// backendOf is one section of an haproxy.cfg.
func backendOf(cfg, header string) string {
	i := strings.Index(cfg, "\n"+header+"\n")
	if i < 0 {
		return ""
	}
	s := cfg[i+1:]
	if j := strings.Index(s, "\n\n"); j >= 0 {
		s = s[:j+1]
	}
	return s
}

// startWriter starts the application writing through HAProxy and waits
// for its first acknowledged write.
func (r *run) startWriter(ctx context.Context) error {
	w, err := testbed.StartWriter(ctx, r.haproxy.Opts.WriteAddr, "test", writerTable)
	if err != nil {
		return err
	}
	r.writer = w
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.WaitAck(wctx, time.Time{}, 0); err != nil {
		return err
	}
	r.say("meanwhile an application writes through HAProxy (%s) as user %q: one INSERT INTO test.%s after another, reconnecting after an error",
		r.haproxy.Opts.WriteAddr, testbed.AppUser, writerTable)
	return nil
}

// awaitClientWrite waits for the first write acknowledged through HAProxy
// after the kill and records the client-visible outage.
func (r *run) awaitClientWrite(ctx context.Context, killedAt time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := r.writer.WaitAck(wctx, killedAt, 0)
	if err != nil {
		return fmt.Errorf("writes through HAProxy did not resume: %w (log %s)", err, r.haproxy.LogPath)
	}
	r.res.ClientOutage = a.At.Sub(killedAt)
	r.res.ClientServer = r.serverByPort(a.Port)
	r.say("+%6.2fs  first write acknowledged through HAProxy %s, by %s", r.res.ClientOutage.Seconds(), r.haproxy.Opts.WriteAddr, r.res.ClientServer)
	return nil
}

// serverByPort is the name of the sandbox server with that port.
func (r *run) serverByPort(port int) string {
	for _, s := range r.db.Servers {
		if s.Port == port {
			return s.Name()
		}
	}
	return fmt.Sprintf("port %d", port)
}

// verifyClientWrites stops the application and checks that every write
// HAProxy acknowledged, before the kill or after, is on the new master.
func (r *run) verifyClientWrites(ctx context.Context, nm *testbed.Server) error {
	r.writer.Stop()
	acks := r.writer.Acks()
	got, err := nm.QueryString(ctx, "SELECT COUNT(*) FROM test."+writerTable+" WHERE a IN ("+joinN(acks)+")")
	if err != nil {
		return fmt.Errorf("read test.%s on %s: %w", writerTable, nm.Name(), err)
	}
	if got != fmt.Sprint(len(acks)) {
		return fmt.Errorf("the new master %s holds %s of the %d writes acknowledged through HAProxy", nm.Name(), got, len(acks))
	}
	r.res.ClientWrites = len(acks)
	r.say("OK: all %d writes acknowledged through HAProxy are on %s.", len(acks), nm.Name())
	return nil
}

func joinN(acks []testbed.Ack) string {
	if len(acks) == 0 {
		return "NULL"
	}
	var b strings.Builder
	for i, a := range acks {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, a.N)
	}
	return b.String()
}

// writableAt is when the journal recorded the new master writable, from
// the managers' status; zero when unknown.
func (r *run) writableAt(ctx context.Context) time.Time {
	st, err := r.leaderStatus(ctx)
	if err != nil || st.App(AppName) == nil {
		return time.Time{}
	}
	for _, e := range st.App(AppName).Journal {
		if e.Phase == managerpkg.PhaseActivate && e.Status == "done" {
			return e.At
		}
	}
	return time.Time{}
}

// stopHAProxy stops the application and HAProxy (cleanup).
func (r *run) stopHAProxy() {
	if r.writer != nil {
		r.writer.Stop()
	}
	if r.haproxy != nil {
		if err := r.haproxy.Stop(); err != nil {
			fmt.Fprintf(r.out, "stop HAProxy: %v\n", err)
		}
	}
}

// summary is the demo's last lines: what the failover cost, as the
// managers and as the client saw it.
func (r *run) summary() {
	res := r.res
	if res.ClientOutage <= 0 {
		return
	}
	fmt.Fprintf(r.out, "\n=== Summary: kill -9 of %s's mariadbd, seen from the application\n\n", res.OldMaster)
	type line struct {
		at   time.Duration
		what string
	}
	lines := []line{
		{res.FailoverTook, "failover finished (replicas repointed, lock released)"},
		{res.ClientOutage, fmt.Sprintf("client-visible outage: the first write acknowledged through HAProxy after the kill, by %s", res.ClientServer)},
	}
	if res.Writable > 0 {
		lines = append(lines, line{res.Writable, fmt.Sprintf("%s writable (journal %q done)", res.NewMaster, managerpkg.PhaseActivate)})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	for _, l := range lines {
		fmt.Fprintf(r.out, "  %6.2f s  %s\n", l.at.Seconds(), l.what)
	}
}
