package simmysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/topology"
)

const (
	testUser = "mha"
	testPass = "sim-secret"
)

// appConfig renders an MHA application file for a simulated application.
func appConfig(t *testing.T, a *App, extra ...string) *config.App {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[server default]\nuser=%s\npassword=%s\nrepl_user=repl\nrepl_password=x\nping_interval=1\n", testUser, testPass)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	for i, e := range a.Servers() {
		fmt.Fprintf(&b, "\n[server%d]\nhostname=%s\nport=%d\ncandidate_master=1\n", i+1, e.Host, e.Port)
	}
	app, err := config.Parse("simapp", strings.NewReader(b.String()), "simapp.conf", nil, "")
	if err != nil {
		t.Fatalf("parse the simulated application's file: %v\n%s", err, b.String())
	}
	return app
}

// TestDiscoveryAndCheckSeeHealthyApp: topology discovery (the leader's
// reads) sees the simulated master with two replicas replicating from
// it, as MariaDB, with no problem and no statement the simulation misses,
// in full and light discoveries (the last one light: its settings carried).
func TestDiscoveryAndCheckSeeHealthyApp(t *testing.T) {
	s := New(testUser, testPass)
	defer s.Close()
	s.started = time.Now().Add(-time.Minute) // up long enough for a light read
	a, err := s.AddApp("127.0.0.1", 2, "repl")
	if err != nil {
		t.Fatal(err)
	}
	app := appConfig(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool := topology.NewPool()
	defer pool.Close()
	var last *topology.Topology
	for i, p := range []*topology.Pool{nil, pool, pool} {
		opts := topology.Options{Pool: p}
		if i == 2 {
			opts.Light = last
		}
		topo := topology.DiscoverWith(ctx, app, opts)
		last = topo
		for _, st := range topo.Servers {
			if !st.Reachable || len(st.ReadErrors) > 0 {
				t.Fatalf("%s: reachable %v, error %v, read errors %v", st.Name(), st.Reachable, st.Err, st.ReadErrors)
			}
			if st.Carried != (i == 2) || st.Uptime < time.Minute {
				t.Errorf("discovery %d, %s: carried %v (want %v), uptime %s", i, st.Name(), st.Carried, i == 2, st.Uptime)
			}
			if st.Version.Flavor != dialect.MariaDB || !st.LogBin || st.MasterStatus == nil {
				t.Errorf("%s: version %+v log_bin %v master status %v", st.Name(), st.Version, st.LogBin, st.MasterStatus)
			}
			if !st.ReplUserFound || len(st.Grants) == 0 {
				t.Errorf("%s: repl user found %v, grants %v", st.Name(), st.ReplUserFound, st.Grants)
			}
		}
		if topo.Master == nil || topo.Master.Name() != "server1" {
			t.Fatalf("master %v, want server1; problems %v", topo.Master, topo.Problems)
		}
		if n := len(topo.AliveReplicas()); n != 2 {
			t.Errorf("%d alive replicas of the master, want 2", n)
		}
		if topo.Master.ReadOnly || !topo.Replicas[0].ReadOnly {
			t.Errorf("read_only: master %v, replica %v", topo.Master.ReadOnly, topo.Replicas[0].ReadOnly)
		}
		if len(topo.Problems) > 0 {
			t.Errorf("discovery problems: %v", topo.Problems)
		}
	}
	if st := pool.Stats(); st.Connects != 3 {
		t.Errorf("two pooled discoveries opened %d connections, want 3", st.Connects)
	}
	if st := s.Stats(); st.Unknown > 0 {
		t.Errorf("%d statements not understood, the last: %s", st.Unknown, st.LastBad)
	}
}

// recorder is a detector.Publisher that keeps what was published.
type recorder struct {
	mu  sync.Mutex
	obs []detector.Observation
}

func (r *recorder) Publish(_ context.Context, o detector.Observation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
	return nil
}

// TestDetectorSeesHealthyMaster: a real detector watching a simulated
// master (every ping_type) observes it ok, holds its sentinel connection
// across SELECT SLEEP, and samples both replicas as connected to it with
// heartbeats advancing.
func TestDetectorSeesHealthyMaster(t *testing.T) {
	for _, pingType := range []string{"select", "insert", "connect"} {
		t.Run(pingType, func(t *testing.T) {
			s := New(testUser, testPass)
			defer s.Close()
			a, err := s.AddApp("127.0.0.1", 2, "repl")
			if err != nil {
				t.Fatal(err)
			}
			app := appConfig(t, a, "ping_type="+pingType)
			pub := &recorder{}
			d := detector.New(detector.Config{Manager: "m1", ReplicaInterval: 100 * time.Millisecond}, pub, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			d.Watch(ctx, app, app.Servers[0])
			defer d.Stop()

			// Watch at least two sentinel rounds (ping_interval=1) and
			// two heartbeat periods.
			var first map[string]int64
			deadline := time.Now().Add(10 * time.Second)
			for {
				local := d.Local()
				views := d.Replicas()
				if len(local) == 1 && (local[0].Kind != detector.KindOK || !local[0].Reachable) {
					t.Fatalf("the detector observes %+v, want ok", local[0])
				}
				if len(views) == 2 && first == nil {
					first = map[string]int64{}
					for _, v := range views {
						first[v.Server] = v.Heartbeats
					}
				}
				if first != nil && len(local) == 1 && time.Since(local[0].Since) > 2500*time.Millisecond {
					for _, v := range views {
						if !v.Reachable || !v.ReplicaOfMaster || v.IORunning != "Yes" || v.SQLRunning != "Yes" || v.LastIOErrno != 0 {
							t.Errorf("replica view %+v, want reachable, replicating from the master, both threads running", v)
						}
						if v.HeartbeatPeriod != time.Second || v.Heartbeats <= first[v.Server] {
							t.Errorf("%s: heartbeat period %s, heartbeats %d then %d: want 1s, advancing", v.Server, v.HeartbeatPeriod, first[v.Server], v.Heartbeats)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no steady observation within 10 s: local %+v replicas %+v", local, views)
				}
				time.Sleep(50 * time.Millisecond)
			}
			pub.mu.Lock()
			n := len(pub.obs)
			pub.mu.Unlock()
			if n == 0 {
				t.Error("nothing published")
			}
			st := s.Stats()
			if st.Unknown > 0 {
				t.Errorf("%d statements not understood, the last: %s", st.Unknown, st.LastBad)
			}
			// The sentinel is kept across rounds: besides one connection per
			// replica, select and insert use one connection for the master
			// (connect opens one more per ping).
			if pingType != "connect" && st.Accepted > 3 {
				t.Errorf("%d connections accepted for one master and two replicas over several rounds, want 3", st.Accepted)
			}
		})
	}
}

// TestCloseEndsSleepsAndConnections: Close ends a SELECT SLEEP in progress
// and closes every connection, so that a bench stops promptly.
func TestCloseEndsSleepsAndConnections(t *testing.T) {
	s := New(testUser, testPass)
	a, err := s.AddApp("127.0.0.1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	app := appConfig(t, a)
	db, err := sql.Open("mysql", topology.DSN(app.Servers[0], 2*time.Second, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(context.Background(), "SELECT SLEEP(60)")
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Open == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("SELECT SLEEP(60) succeeded across Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SELECT SLEEP(60) still running 5 s after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
	if st := s.Stats(); st.Open != 0 {
		t.Errorf("%d connections open after Close", st.Open)
	}
}
