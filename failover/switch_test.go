package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// appWriter writes unique rows as the application user to whichever server
// accepts them and records every acknowledged id.
type appWriter struct {
	dbs   []*sql.DB
	mu    sync.Mutex
	acked []int
}

func (w *appWriter) run(ctx context.Context) {
	target := 0
	for id := 1; ctx.Err() == nil; id++ {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := w.dbs[target].ExecContext(wctx, "INSERT INTO test.w (id) VALUES (?)", id)
		cancel()
		if err == nil {
			w.mu.Lock()
			w.acked = append(w.acked, id)
			w.mu.Unlock()
			continue
		}
		target = (target + 1) % len(w.dbs) // try the next server with the next id
	}
}

// prober tries a real write as the application user on every server, over
// and over, and records when each server last and first accepted one.
type prober struct {
	dbs         []*sql.DB
	mu          sync.Mutex
	first, last []time.Time
}

func (p *prober) run(ctx context.Context) {
	p.first, p.last = make([]time.Time, len(p.dbs)), make([]time.Time, len(p.dbs))
	for ctx.Err() == nil {
		for i, db := range p.dbs {
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			t0 := time.Now()
			_, err := db.ExecContext(pctx, "INSERT INTO test.probe (server) VALUES (?)", i)
			cancel()
			if err == nil {
				p.mu.Lock()
				if p.first[i].IsZero() {
					p.first[i] = t0
				}
				p.last[i] = time.Now()
				p.mu.Unlock()
			}
		}
	}
}

func appDB(t *testing.T, s *testbed.Server) *sql.DB {
	db, err := sql.Open("mysql", s.DSN(testbed.AppUser, testbed.AppPassword, "test"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(2)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSwitchUnderLoad switches server1 -> server2 online while a writer and
// a prober write as the application user: no acknowledged write is lost,
// the old master accepts no write after the new one accepted its first,
// the old master becomes a replica, and the blocked time is reported.
func TestSwitchUnderLoad(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		t.Run(map[bool]string{false: "filepos", true: "gtid"}[gtid], func(t *testing.T) {
			ctx := context.Background()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
				"CREATE TABLE test.w (id INT PRIMARY KEY)",
				"CREATE TABLE test.probe (id INT AUTO_INCREMENT PRIMARY KEY, server INT)"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)

			// A long-running update on the master refuses the switch.
			blocker := appDB(t, s1)
			lctx, stopLong := context.WithCancel(ctx)
			go blocker.ExecContext(lctx, "INSERT INTO test.w (id) SELECT 1000000 + SLEEP(30)")
			deadline := time.Now().Add(10 * time.Second)
			for {
				n, _ := s1.QueryString(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'INSERT INTO test.w (id) SELECT%' AND time >= 1")
				if n == "1" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("long update never showed up in the processlist")
				}
				time.Sleep(50 * time.Millisecond)
			}
			_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "running longer") {
				t.Fatalf("switch with a long update running: %v", err)
			}
			stopLong()
			id, err := s1.QueryString(ctx, "SELECT id FROM information_schema.processlist WHERE info LIKE 'INSERT INTO test.w (id) SELECT%' LIMIT 1")
			if err != nil {
				t.Fatal(err)
			}
			if err := s1.Exec(ctx, "KILL "+id); err != nil {
				t.Fatal(err)
			}
			if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
				t.Fatalf("refused switch left read_only=%s on the master", ro)
			}

			dbs := []*sql.DB{appDB(t, s1), appDB(t, s2), appDB(t, s3)}
			w := &appWriter{dbs: dbs}
			p := &prober{dbs: []*sql.DB{appDB(t, s1), appDB(t, s2)}}
			lctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); w.run(lctx) }()
			go func() { defer wg.Done(); p.run(lctx) }()
			// Let the load run before and after the switch.
			waitAcked := func(n int) {
				deadline := time.Now().Add(20 * time.Second)
				for {
					w.mu.Lock()
					got := len(w.acked)
					w.mu.Unlock()
					if got >= n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("writer acknowledged only %d writes", got)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitAcked(50)
			var out strings.Builder
			rep, err := Switch(ctx, Options{App: app, Yes: true, Out: &out, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true})
			t.Log(out.String())
			if err != nil {
				stop()
				wg.Wait()
				t.Fatalf("switch: %v", err)
			}
			w.mu.Lock()
			before := len(w.acked)
			w.mu.Unlock()
			waitAcked(before + 50)
			stop()
			wg.Wait()

			if rep.WritesBlocked <= 0 || !strings.Contains(out.String(), "Writes were blocked for") {
				t.Errorf("blocked-write time not reported: %v", rep.WritesBlocked)
			}
			t.Logf("writes blocked %.3f s", rep.WritesBlocked.Seconds())
			// Never two writable servers: server1's last accepted probe
			// came before server2's first.
			if p.first[1].IsZero() || p.last[0].IsZero() {
				t.Fatalf("probes: server1 last %v, server2 first %v", p.last[0], p.first[1])
			}
			if !p.last[0].Before(p.first[1]) {
				t.Errorf("two writable masters: server1 accepted a write at %v, after server2's first at %v", p.last[0], p.first[1])
			}
			// No acknowledged write lost, on every server.
			wantReplicaOf(t, ctx, s1, s2, gtid)
			wantReplicaOf(t, ctx, s3, s2, gtid)
			for _, s := range []*testbed.Server{s1, s3} {
				if err := s.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []*testbed.Server{s1, s2, s3} {
				n, err := s.QueryString(ctx, "SELECT COUNT(*) FROM test.w WHERE id IN ("+joinInts(w.acked)+")")
				if err != nil {
					t.Fatal(err)
				}
				if n != fmt.Sprint(len(w.acked)) {
					t.Errorf("%s holds %s of %d acknowledged writes", s.Name(), n, len(w.acked))
				}
			}
			if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
				t.Errorf("old master read_only=%s", ro)
			}
		})
	}
}

func joinInts(xs []int) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}
