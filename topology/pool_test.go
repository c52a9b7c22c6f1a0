package topology

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// connections returns the server's Connections counter (connections ever
// accepted, root's own included).
func connections(t *testing.T, ctx context.Context, s *testbed.Server) int {
	t.Helper()
	return statusCounter(t, ctx, s, "Connections")
}

// managerThreads lists the ids of the manager user's connections on s.
func managerThreads(t *testing.T, ctx context.Context, s *testbed.Server) []string {
	t.Helper()
	rows, err := s.QueryRows(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", testbed.MHAUser)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r["ID"])
	}
	return ids
}

// TestPoolReusesReplacesAndCloses: discoveries through a Pool connect once
// per server (counted on the servers: their Connections counter), while
// discoveries without one connect every time; a connection the server
// killed is replaced at the next discovery, which still sees the server;
// Retain closes the connections of a server no longer configured.
func TestPoolReusesReplacesAndCloses(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	app := loadApp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Without a pool, each discovery opens one connection per server; with
	// one, only the first does.
	for _, tc := range []struct {
		name string
		pool *Pool
		want int
	}{
		{"no pool", nil, 3},
		{"pool", NewPool(), 1},
	} {
		before := make([]int, len(c.Servers))
		for i, s := range c.Servers {
			connections(t, ctx, s) // root's connection is open and reused from here on
			before[i] = connections(t, ctx, s)
		}
		for range 3 {
			topo := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: tc.pool})
			if topo.Master == nil || topo.Master.Name() != "server1" || len(topo.AliveReplicas()) != 2 {
				t.Fatalf("%s: discovery sees master %v, %d alive replicas; problems %v", tc.name, topo.Master, len(topo.AliveReplicas()), topo.Problems)
			}
		}
		for i, s := range c.Servers {
			// The read of Connections itself is on root's open connection.
			if got := connections(t, ctx, s) - before[i]; got != tc.want {
				t.Errorf("%s: %s accepted %d connections for 3 discoveries, want %d", tc.name, s.Name(), got, tc.want)
			}
		}
		if tc.pool != nil {
			if st := tc.pool.Stats(); st.Connects != 3 || st.Servers != 3 || st.Open != 3 {
				t.Errorf("pool stats after 3 discoveries: %+v, want 3 connects, 3 servers, 3 open", st)
			}
			tc.pool.Close()
		}
	}

	// A pooled connection the server killed is replaced.
	pool := NewPool()
	DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool})
	// (The earlier pools' connections close asynchronously on the server.)
	var ids []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ids = managerThreads(t, ctx, c.Servers[1]); len(ids) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server2 has %d manager connections after a pooled discovery, want 1: %v", len(ids), ids)
		}
	}
	if err := c.Servers[1].Exec(ctx, "KILL "+ids[0]); err != nil {
		t.Fatal(err)
	}
	topo := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool})
	s2 := topo.ByAddr("server2")
	if !s2.Reachable || len(s2.ReadErrors) > 0 {
		t.Fatalf("after its pooled connection was killed, server2 reachable=%v err=%v read errors=%v", s2.Reachable, s2.Err, s2.ReadErrors)
	}
	if st := pool.Stats(); st.Connects != 4 {
		t.Errorf("pool connects after one killed connection: %d, want 4 (3 + 1 replacement)", st.Connects)
	}
	if now := managerThreads(t, ctx, c.Servers[1]); len(now) != 1 || now[0] == ids[0] {
		t.Errorf("server2's manager connections after the replacement: %v (killed %s)", now, ids[0])
	}

	// server3 leaves the configuration: Retain closes its connection.
	keep := map[string]bool{}
	for _, srv := range app.Servers[:2] {
		keep[PoolKey(app, srv, Options{ConnectTimeout: time.Second})] = true
	}
	pool.Retain(keep)
	deadline := time.Now().Add(10 * time.Second)
	for len(managerThreads(t, ctx, c.Servers[2])) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server3 still has manager connections 10 s after Retain dropped it: %v", managerThreads(t, ctx, c.Servers[2]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(managerThreads(t, ctx, c.Servers[0])); n != 1 {
		t.Errorf("server1 has %d manager connections after Retain kept it, want 1", n)
	}
	if st := pool.Stats(); st.Servers != 2 {
		t.Errorf("pool holds %d servers after Retain of 2", st.Servers)
	}
	pool.Close()
	if topo := DiscoverWith(ctx, app, Options{ConnectTimeout: time.Second, Pool: pool}); topo.Servers[0].Reachable {
		t.Errorf("a discovery through a closed pool reached server1")
	}
}

// TestPoolLifetimeLogsInAgain: a pooled connection older than the pool's
// lifetime is replaced by a new login at the next discovery, so that a
// server that stopped accepting the login is seen (here: the manager
// user's password changed on server2).
func TestPoolLifetimeLogsInAgain(t *testing.T) {
	c := testbed.Start(t, testbed.Options{N: 2, NoSSH: true})
	app := loadApp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := NewPool()
	pool.lifetime = 500 * time.Millisecond
	defer pool.Close()
	opts := Options{ConnectTimeout: time.Second, Pool: pool}
	if s2 := DiscoverWith(ctx, app, opts).ByAddr("server2"); !s2.Reachable {
		t.Fatalf("server2 unreachable: %v", s2.Err)
	}
	run(t, c.Servers[1], "SET PASSWORD FOR '"+testbed.MHAUser+"'@'%' = PASSWORD('rotated-elsewhere')")
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2 := DiscoverWith(ctx, app, opts).ByAddr("server2")
		if !s2.Reachable {
			if s2.Err == nil || !strings.Contains(s2.Err.Error(), "Access denied") {
				t.Fatalf("server2 unreachable with %v, want Access denied", s2.Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("discovery through the pool still logged in to server2 10 s after its password changed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
