package manager_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// TestDivergedOldMasterFenced: the master is killed and failed over; it
// comes back and takes writes (as clients next to it would during a
// partition). The leader finds it holding those transactions, fences it
// (read_only=1), shows it diverged in status with the command to run,
// lists the detection in history, and `reconcile` (the API behind mhactl
// reconcile --json) shows exactly those transactions, written to a 0600
// file on the leader.
func TestDivergedOldMasterFenced(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startEnv(t, testbed.Options{N: 3}, func(c *testbed.Cluster) {
		if err := c.Master().Exec(ctx, "CREATE DATABASE test", "CREATE TABLE test.w (id INT PRIMARY KEY, v VARCHAR(20))",
			"INSERT INTO test.w VALUES (1, 'one')"); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}, nil)
	old := e.db.Master()
	e.waitHealthy(old)
	if err := old.Kill9(); err != nil {
		t.Fatal(err)
	}
	h := e.waitHistory(ctxT(t, 60*time.Second), 1)
	newMaster := e.server(h[0].NewMaster)
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The leader checks it once it is back, before it takes any write:
	// clean then, it must be checked again when the writes come.
	for deadline := time.Now().Add(60 * time.Second); ; {
		logs := e.mc.Log(0) + e.mc.Log(1) + e.mc.Log(2)
		if strings.Contains(logs, "holds nothing the current master lacks") || strings.Contains(logs, "holding nothing the current master lacks yet") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader never checked the returning old master")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := old.Exec(ctx, "SET GLOBAL read_only = 0", "INSERT INTO test.w VALUES (10, 'ten'), (11, 'eleven')",
		"UPDATE test.w SET v = 'ONE' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.mc.WaitApp(ctxT(t, 60*time.Second), li, "app1", func(a *api.AppStatus) bool {
		s := a.Server(old.Name())
		return s != nil && s.Health == api.HealthDiverged
	})
	if err != nil {
		t.Fatalf("the leader never showed %s diverged: %v", old.Name(), err)
	}
	s := a.Server(old.Name())
	if want := "run `mhactl reconcile --app app1 --server " + old.Name() + "`"; !strings.Contains(s.HealthDetail, want) || !strings.HasPrefix(s.HealthDetail, "2 transaction(s)") {
		t.Errorf("status detail %q: want the count (2) and %q", s.HealthDetail, want)
	}
	if ro, err := old.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Errorf("diverged old master read_only=%q (%v), want 1 (fenced)", ro, err)
	}
	if a.Master != newMaster.Addr() {
		t.Errorf("master %s, want %s", a.Master, newMaster.Addr())
	}
	// The record is applied a moment before the lock's release writes
	// the history entry. A check that came between the test's SET GLOBAL
	// read_only = 0 and its writes found the server writable and clean:
	// it fenced it and wrote an entry of its own first (the writes, as
	// root, went in all the same).
	hctx := ctxT(t, 30*time.Second)
	for n := 2; ; {
		hist := e.waitHistory(hctx, n)
		last := hist[len(hist)-1]
		if last.Kind == "divergence" && last.Result == "success" && strings.Contains(last.Summary, "2 transaction(s)") {
			break
		}
		if last.Kind != "divergence" || !strings.Contains(last.Summary, "holds nothing the current master lacks") {
			t.Fatalf("history lacks the detection: %+v", hist)
		}
		n = len(hist) + 1
	}

	r, err := e.mc.Client().Reconcile(ctx, "app1", old.Name(), false)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "detected" || r.Epoch != h[0].Epoch || len(r.Transactions) != 2 || r.Server != old.Name() {
		t.Fatalf("reconcile answer %+v", r)
	}
	var rows []string
	for _, tx := range r.Transactions {
		for _, row := range tx.Rows {
			rows = append(rows, row.Type+" "+row.Table+" "+*row.Values[0]+" "+*row.Values[1])
		}
	}
	if got, want := strings.Join(rows, "; "), "insert test.w 10 ten; insert test.w 11 eleven; update test.w 1 ONE"; got != want {
		t.Errorf("reconcile rows %q, want %q", got, want)
	}
	fi, err := os.Stat(r.File)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("divergence file %s: %v, mode %v", r.File, err, fi)
	}

	// Without reconcile, rejoin refuses.
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionRejoin, App: "app1", Host: old.Name()}); err == nil && res.OK {
		t.Fatalf("rejoin of a diverged server before reconcile: %+v", res)
	}
	// reconcile --apply: every row on the new master.
	if err := newMaster.Exec(ctx, "INSERT INTO test.w VALUES (20, 'new')"); err != nil {
		t.Fatal(err)
	}
	r, err = e.mc.Client().Reconcile(ctx, "app1", old.Name(), true)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "reconciled" || r.Applied != 2 || r.Conflict != "" {
		t.Fatalf("reconcile --apply: %+v", r)
	}
	if got := wRowsOf(t, newMaster); got != "1=ONE 10=ten 11=eleven 20=new" {
		t.Errorf("new master after reconcile: %s", got)
	}
	_, err = e.mc.WaitApp(ctxT(t, 30*time.Second), li, "app1", func(a *api.AppStatus) bool {
		s := a.Server(old.Name())
		return s != nil && strings.Contains(s.HealthDetail, "mhactl rejoin --app app1 --host "+old.Name())
	})
	if err != nil {
		t.Fatalf("status after reconcile: %v", err)
	}
	// rejoin converges.
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionRejoin, App: "app1", Host: old.Name()})
	if err != nil || !res.OK {
		t.Fatalf("rejoin after reconcile: %+v %v", res, err)
	}
	if err := newMaster.Exec(ctx, "INSERT INTO test.w VALUES (30, 'after')"); err != nil {
		t.Fatal(err)
	}
	want := wRowsOf(t, newMaster)
	for _, s := range e.db.Servers {
		if s == newMaster {
			continue
		}
		if err := s.WaitCaughtUp(ctx, newMaster, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := wRowsOf(t, s); got != want || checksumOf(t, s) != checksumOf(t, newMaster) {
			t.Errorf("%s holds %s, the new master %s", s.Name(), got, want)
		}
	}
	if _, err := e.mc.WaitApp(ctxT(t, 30*time.Second), li, "app1", func(a *api.AppStatus) bool {
		s := a.Server(old.Name())
		return s != nil && s.Health == api.HealthOK && s.Role == api.RoleReplica
	}); err != nil {
		t.Errorf("status after rejoin: %v", err)
	}
	if r, err := e.mc.Client().Reconcile(ctx, "app1", old.Name(), false); err != nil || r.State != "rejoined" || r.Applied != 2 {
		t.Errorf("reconcile after rejoin: %+v %v", r, err)
	}
	// A writable former master is fenced before it is read: when the
	// leader's check ran before the test's writes, an earlier divergence
	// entry says it was fenced and held nothing yet.
	kinds, detections := "", 0
	for _, h := range e.history(ctx) {
		kinds += h.Kind + ":" + h.Result + " "
		if h.Kind == "divergence" && strings.Contains(h.Summary, "transaction(s)") && !strings.Contains(h.Summary, "holds nothing") {
			detections++
		}
	}
	if !strings.Contains(kinds, "divergence:success rejoin:failed reconcile:success rejoin:success") || detections != 1 {
		t.Errorf("history %s: %d detections of divergent transactions, want 1", kinds, detections)
	}
}

func wRowsOf(t *testing.T, s *testbed.Server) string {
	t.Helper()
	rows, err := s.Root().Query("SELECT id, v FROM test.w ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+"="+v)
	}
	return strings.Join(out, " ")
}

func checksumOf(t *testing.T, s *testbed.Server) string {
	t.Helper()
	var name, sum string
	if err := s.Root().QueryRow("CHECKSUM TABLE test.w").Scan(&name, &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}
