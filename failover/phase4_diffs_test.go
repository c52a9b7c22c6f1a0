package failover

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// TestDiffBarrier: a diff source waits until every replica has arrived,
// once each, whatever the order; without replicas nothing waits.
func TestDiffBarrier(t *testing.T) {
	n := func(name string) *node { return &node{srv: &config.Server{Name: name}} }
	reps := []*node{n("server3"), n("server4"), n("server5")}
	b := newDiffBarrier(reps, []diffSource{{name: "server3"}})
	if !b.isSource("server3") || b.isSource("server4") {
		t.Fatalf("sources: server3 %v, server4 %v", b.isSource("server3"), b.isSource("server4"))
	}
	b.arrive("server3")
	b.arrive("server3")
	b.arrive("server4")
	if b.ready() {
		t.Fatalf("ready before server5 arrived")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.wait(ctx); err == nil {
		t.Fatalf("wait returned before server5 arrived")
	}
	done := make(chan error, 1)
	go func() { done <- b.wait(context.Background()) }()
	b.arrive("server5")
	if err := <-done; err != nil || !b.ready() {
		t.Fatalf("after every arrival: wait %v, ready %v", err, b.ready())
	}
	if err := newDiffBarrier(nil, nil).wait(context.Background()); err != nil {
		t.Fatalf("no replicas: %v", err)
	}
}

// teeLog writes pipeline output to t.Log and keeps it for the test.
func teeLog(t *testing.T) (io.Writer, *bytes.Buffer) {
	var buf bytes.Buffer
	return io.MultiWriter(tlog{t}, &buf), &buf
}

// stopIO stops s's IO thread and waits until it is stopped.
func stopIO(t *testing.T, ctx context.Context, s *testbed.Server) {
	t.Helper()
	if err := s.StopIOThread(ctx); err != nil {
		t.Fatal(err)
	}
}

// slowDiffRecovery is the default recovery whose relay diff for one
// replica (its output file names its port) starts late, as a diff of large
// relay logs over a slow link ends late: it waits until the diff's source
// no longer replicates from the dead master (it was repointed, and its
// relay logs deleted) or for at most `most`, then reads.
type slowDiffRecovery struct {
	LogRecovery
	t          *testing.T
	lagging    int // port of the replica whose diff is slow
	source     *testbed.Server
	deadPort   string
	most       time.Duration
	sourceGone atomic.Bool // the source was repointed before the read
}

func (s *slowDiffRecovery) RelayDiff(ctx context.Context, src RelaySource, from Coord, out string) (bool, error) {
	if strings.Contains(filepath.Base(out), fmt.Sprintf("_%d_", s.lagging)) {
		for deadline := time.Now().Add(s.most); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			st, err := s.source.SlaveStatus(ctx)
			if err == nil && (st == nil || st["Master_Port"] != s.deadPort) {
				s.sourceGone.Store(true)
				s.t.Logf("%s was repointed before the relay diff %s was read", s.source.Name(), filepath.Base(out))
				break
			}
		}
	}
	return s.LogRecovery.RelayDiff(ctx, src, from, out)
}

// TestFailoverDiffSpansRotation (MHA's phase 4.1 before 4.2): server4 is
// behind the latest replica, server3, by transactions spanning two
// rotations of the dead master's binlog, and server2, behind too, is named
// new master. server3 is repointed in phase 4 (its RESET SLAVE ALL deletes
// its relay logs) while server4's diff may still be read from them (here
// made slow): every diff must be written locally before the first server
// whose relay logs are read is repointed. The failover succeeds and every
// row is everywhere.
func TestFailoverDiffSpansRotation(t *testing.T) {
	ctx := context.Background()
	c := startWithT1(t, testbed.Options{N: 4})
	m, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	stopIO(t, ctx, s4)
	if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES (2)", "FLUSH BINARY LOGS", "INSERT INTO test.t1 VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	stopIO(t, ctx, s2)
	if err := m.Exec(ctx, "FLUSH BINARY LOGS", "INSERT INTO test.t1 VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	if err := s3.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// server2 is a binlog file behind: MHA's check_repl_delay would
	// refuse it as new master.
	app := loadApp(t, c, "check_repl_delay=0")
	out, buf := teeLog(t)
	rec := &slowDiffRecovery{LogRecovery: DefaultRecovery(), t: t, lagging: s4.Port, source: s3,
		deadPort: fmt.Sprint(m.Port), most: 3 * time.Second}
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: out,
		NewMaster: s2.Addr(), WaitTimeout: 60 * time.Second, Recovery: rec}, DeadMaster: m.Addr()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rec.sourceGone.Load() {
		t.Errorf("%s, whose relay logs server4's diff is read from, was repointed before the diff was read", s3.Name())
	}
	if rep.Plan.Latest != s3.Name() {
		t.Fatalf("latest replica %s, want %s", rep.Plan.Latest, s3.Name())
	}
	if !strings.Contains(buf.String(), "relay diff") {
		t.Errorf("no relay diff generated")
	}
	for _, s := range []*testbed.Server{s2, s3, s4} {
		wantRows(t, ctx, s, 1, 2, 3, 4)
	}
	for _, s := range []*testbed.Server{s3, s4} {
		wantReplicaOf(t, ctx, s, s2, false)
	}
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testbed.Server{s3, s4} {
		if err := s.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		wantRows(t, ctx, s, 1, 2, 3, 4, 5)
	}
}

// TestFailoverDiffFromOtherLatest (MHA: "relay log not found ... trying
// other latest slaves"): server2 and server3 received the same; server2,
// listed first and so the latest replica, purges its relay logs
// (relay_log_purge=1, FLUSH RELAY LOGS after applying), so they no longer
// reach back to server4's position. server4's diff comes from server3.
func TestFailoverDiffFromOtherLatest(t *testing.T) {
	ctx := context.Background()
	c := startWithT1(t, testbed.Options{N: 4, Servers: []testbed.ServerOptions{{}, {Extra: []string{"relay_log_purge=1"}}}})
	m, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	stopIO(t, ctx, s4)
	if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES (2)", "INSERT INTO test.t1 VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testbed.Server{s2, s3} {
		if err := s.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// server2 purges the relay log holding rows 2 and 3: MariaDB purges
	// a relay log once its SQL thread has left the one after it.
	st, err := s2.SlaveStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := st["Relay_Log_File"]
	for _, row := range []string{"4", "5"} {
		if err := s2.Exec(ctx, "FLUSH RELAY LOGS"); err != nil {
			t.Fatal(err)
		}
		if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES ("+row+")"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*testbed.Server{s2, s3} {
			if err := s.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitRelayLogPurged(t, s2, held)
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	out, buf := teeLog(t)
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: out,
		NewMaster: s2.Addr(), WaitTimeout: 60 * time.Second}, DeadMaster: m.Addr()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.Plan.Latest != s2.Name() {
		t.Fatalf("latest replica %s, want %s (listed first among the equally latest)", rep.Plan.Latest, s2.Name())
	}
	if !strings.Contains(buf.String(), "relay diff") || !strings.Contains(buf.String(), "generated from the latest replica "+app.Server("server3").String()) {
		t.Errorf("server4's relay diff does not say it came from server3")
	}
	for _, s := range []*testbed.Server{s2, s3, s4} {
		wantRows(t, ctx, s, 1, 2, 3, 4, 5)
	}
	for _, s := range []*testbed.Server{s3, s4} {
		wantReplicaOf(t, ctx, s, s2, false)
	}
}

// waitRelayLogPurged waits until s's relay-log index no longer lists the
// relay log named file and the file is gone.
func waitRelayLogPurged(t *testing.T, s *testbed.Server, file string) {
	t.Helper()
	index := s.RelayBase() + ".index"
	var listed string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(index)
		if err != nil {
			t.Fatal(err)
		}
		listed = string(b)
		_, serr := os.Stat(filepath.Join(filepath.Dir(index), file))
		if !strings.Contains(listed, file) && os.IsNotExist(serr) {
			t.Logf("%s purged its relay log %s; it keeps %s", s.Name(), file, strings.Join(strings.Fields(listed), " "))
			return
		}
	}
	t.Fatalf("%s still has its relay log %s (index: %s) with relay_log_purge=1", s.Name(), file, listed)
}
