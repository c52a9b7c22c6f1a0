package failover

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/testbed"
)

// divergedOldMaster sets up the partition case on real servers: test.w
// (id, v) with rows 1 and 2 everywhere, server1 stopped, a dead-master
// failover to server2 (server3 repointed), server1 started again and
// written to (as clients next to it would during a partition): three
// transactions the new master never got. It returns the failover's plan.
func divergedOldMaster(t *testing.T, gtid bool) (*testbed.Cluster, *config.App, *Plan) {
	t.Helper()
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
	s1, s2 := c.Servers[0], c.Servers[1]
	if err := s1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS test",
		"CREATE TABLE test.w (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO test.w VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()}, DeadMaster: s1.Addr()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The partition's writes on the old master: three transactions.
	if err := s1.Exec(ctx, "INSERT INTO test.w VALUES (10, 'ten'), (11, 'eleven')",
		"UPDATE test.w SET v = 'ONE' WHERE id = 1",
		"DELETE FROM test.w WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	return c, app, rep.Plan
}

func strp(s string) *string { return &s }

// TestDivergenceDetected: an old master written to after a failover is
// found holding exactly its three transactions, fenced (read_only, the
// application's connections killed), and its transactions are written to
// a 0600 file of readable SQL; the decoded rows are exactly the writes.
func TestDivergenceDetected(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		t.Run(map[bool]string{false: "filepos", true: "gtid"}[gtid], func(t *testing.T) {
			ctx := context.Background()
			c, app, plan := divergedOldMaster(t, gtid)
			s1 := c.Servers[0]
			opts := DivergenceOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Epoch: 7}
			txs, err := DivergentTransactions(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(txs) != 3 {
				t.Fatalf("divergent transactions %q, want 3", txs)
			}

			appConn, err := sql.Open("mysql", s1.DSN(testbed.AppUser, testbed.AppPassword, "test"))
			if err != nil {
				t.Fatal(err)
			}
			defer appConn.Close()
			appConn.SetMaxOpenConns(1)
			if err := appConn.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			fenced, err := FenceDiverged(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("fence: %s", fenced)
			if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
				t.Errorf("diverged old master read_only=%s after the fence", ro)
			}
			if _, err := appConn.ExecContext(ctx, "INSERT INTO test.w VALUES (99, 'late')"); err == nil {
				t.Errorf("the application could still write to the fenced old master")
			}

			res, err := ReadDivergence(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := res.File, filepath.Join(app.ManagerWorkdir, "divergence_"+app.Name+"_server1_epoch7.sql"); got != want {
				t.Errorf("file %s, want %s", got, want)
			}
			for _, f := range []string{res.File, res.RawFile} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
				}
			}
			body, err := os.ReadFile(res.File)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("divergence file:\n%s", body)
			for _, want := range []string{"INSERT INTO `test`.`w` (`id`, `v`) VALUES (10, 'ten')",
				"UPDATE `test`.`w` SET `id` = 1, `v` = 'ONE' WHERE `id` <=> 1 AND `v` <=> 'one' LIMIT 1",
				"DELETE FROM `test`.`w` WHERE `id` <=> 2 AND `v` <=> 'two' LIMIT 1", "tables: test.w"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("the divergence file lacks %q", want)
				}
			}
			for _, secret := range []string{testbed.MHAPassword, testbed.ReplPassword, testbed.AppPassword} {
				if bytes.Contains(body, []byte(secret)) {
					t.Errorf("the divergence file holds a password")
				}
			}
			type row struct {
				Type   string
				Values []*string
			}
			var got []row
			for _, tx := range res.Transactions {
				if !reflect.DeepEqual(tx.Tables, []string{"test.w"}) || time.Since(tx.Time) > time.Minute || !strings.HasPrefix(tx.Binlog, "mysql-bin.000002:") {
					t.Errorf("transaction %+v", tx)
				}
				if gtid != (tx.GTID != "") && tx.GTID == "" {
					t.Errorf("transaction without GTID: %+v", tx)
				}
				for _, r := range tx.Rows {
					if !reflect.DeepEqual(r.Columns, []string{"id", "v"}) {
						t.Errorf("columns %v", r.Columns)
					}
					got = append(got, row{r.Type, r.Values})
				}
			}
			want := []row{{"insert", []*string{strp("10"), strp("ten")}}, {"insert", []*string{strp("11"), strp("eleven")}},
				{"update", []*string{strp("1"), strp("ONE")}}, {"delete", []*string{strp("2"), strp("two")}}}
			if len(res.Transactions) != 3 || fmt.Sprint(rowsText(got)) != fmt.Sprint(rowsText(want)) {
				t.Errorf("decoded %d transactions, rows %v; want 3, %v", len(res.Transactions), rowsText(got), rowsText(want))
			}
			// Without reconcile, rejoin refuses as before.
			if _, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app}, Host: s1.Addr(), Plan: plan}); err == nil {
				t.Errorf("rejoin of a diverged old master succeeded")
			}
		})
	}
}

func rowsText[T any](rows []T) []string {
	var out []string
	for _, r := range rows {
		v := reflect.ValueOf(r)
		s := fmt.Sprint(v.Field(0).Interface())
		for _, p := range v.Field(1).Interface().([]*string) {
			if p == nil {
				s += " NULL"
			} else {
				s += " " + *p
			}
		}
		out = append(out, s)
	}
	return out
}

// checksum is CHECKSUM TABLE test.w on s.
func checksum(t *testing.T, ctx context.Context, s *testbed.Server) string {
	t.Helper()
	var name, sum string
	if err := s.Root().QueryRowContext(ctx, "CHECKSUM TABLE test.w").Scan(&name, &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// wRows is test.w on s as "id=v" in id order.
func wRows(t *testing.T, ctx context.Context, s *testbed.Server) string {
	t.Helper()
	rows, err := s.Root().QueryContext(ctx, "SELECT id, v FROM test.w ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d=%s", id, v))
	}
	return strings.Join(out, " ")
}

// TestReconcileReplayRejoin: the divergent transactions of an old master
// are replayed on the new master. A duplicate key (transaction 1) and a
// row changed on the new master (transaction 2) each stop the replay,
// naming the transaction, with nothing applied; once the conflicts are
// gone every row reaches the new master in one transaction. The old master
// then rejoins and every server's CHECKSUM TABLE agrees: "rewind" reverts
// its own transactions and replicates everything, the replay included,
// also after the new master wrote the same rows before the replay; "skip"
// (the way for transactions that cannot be reverted row by row) replicates
// up to the replay, skips it and goes on after it, where the new master's
// writes before the replay touched other rows.
func TestReconcileReplayRejoin(t *testing.T) {
	for _, tc := range []struct {
		name       string
		gtid, skip bool
	}{{"filepos/rewind", false, false}, {"gtid/rewind", true, false}, {"filepos/skip", false, true}, {"gtid/skip", true, true}} {
		gtid := tc.gtid
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, app, plan := divergedOldMaster(t, gtid)
			s1, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]
			opts := DivergenceOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Epoch: 3}
			if _, err := FenceDiverged(ctx, opts); err != nil {
				t.Fatal(err)
			}
			res, err := ReadDivergence(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			// The new master takes writes of its own meanwhile.
			if err := s2.Exec(ctx, "INSERT INTO test.w VALUES (20, 'new')"); err != nil {
				t.Fatal(err)
			}
			if !tc.skip {
				conflicts(t, ctx, s2, opts, res.Transactions)
			}
			rr, err := ReplayDivergence(ctx, opts, s2.Addr(), res.Transactions)
			if err != nil {
				t.Fatal(err)
			}
			if rr.Applied != 3 || rr.Conflict != "" || rr.GTID == "" || rr.Start.IsZero() || rr.End.Compare(rr.Start) <= 0 {
				t.Fatalf("replay: %+v", rr)
			}
			t.Logf("replayed as %s at %s..%s", rr.GTID, rr.Start, rr.End)
			if got, want := wRows(t, ctx, s2), "1=ONE 10=ten 11=eleven 20=new"; got != want {
				t.Errorf("new master after the replay: %s, want %s", got, want)
			}
			if err := s2.Exec(ctx, "INSERT INTO test.w VALUES (30, 'after')"); err != nil {
				t.Fatal(err)
			}
			r := &Replayed{Transactions: len(res.Transactions), Epoch: opts.Epoch, Master: rr.Master, GTID: rr.GTID, Start: rr.Start, End: rr.End}
			// A count that does not match what the old master holds: refused.
			wrong := *r
			wrong.Transactions = 2
			if _, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app}, Host: s1.Addr(), Plan: plan, Replayed: &wrong}); err == nil || !strings.Contains(err.Error(), "holds 3 transaction(s)") {
				t.Fatalf("rejoin with a replay of another count: %v", err)
			}
			if !tc.skip {
				// A rejoin that rewound the old master and then failed is
				// run again: the second rewind finds it rewound already.
				n, err := connect(ctx, app.Server(s1.Addr()), time.Second, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = rewind(ctx, n, newFencing(app.Name, nil, 0, 0, nil), 0, res.Transactions)
				n.close()
				if err != nil {
					t.Fatal(err)
				}
				if got := wRows(t, ctx, s1); got != "1=one 2=two" {
					t.Fatalf("old master after the rewind: %s", got)
				}
			}
			out, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Replayed: r, skipReplay: tc.skip})
			if err != nil {
				t.Fatalf("rejoin after the replay: %v", err)
			}
			t.Logf("rejoined: %+v", out)
			if want := map[bool]string{false: "rewound", true: "skipped"}[tc.skip]; !strings.Contains(out.From, want) {
				t.Errorf("rejoin from %q: want it %s", out.From, want)
			}
			wantReplicaOf(t, ctx, s1, s2, gtid)
			if err := s2.Exec(ctx, "INSERT INTO test.w VALUES (50, 'last')"); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*testbed.Server{s1, s3} {
				if err := s.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			want := wRows(t, ctx, s2)
			if want != "1=ONE 10=ten 11=eleven 20=new 30=after 50=last" {
				t.Errorf("new master: %s", want)
			}
			sum := checksum(t, ctx, s2)
			for _, s := range []*testbed.Server{s1, s3} {
				if got := wRows(t, ctx, s); got != want || checksum(t, ctx, s) != sum {
					t.Errorf("%s holds %s (checksum %s), the new master %s (checksum %s)", s.Name(), got, checksum(t, ctx, s), want, sum)
				}
			}
		})
	}
}

// conflicts: the new master holds key 11, which the old master inserted
// too, then row 1 changed where the old master updated it: each stops the
// replay naming its transaction, and nothing is applied. Both are undone
// afterwards (as an operator resolving them would).
func conflicts(t *testing.T, ctx context.Context, s2 *testbed.Server, opts DivergenceOptions, txs []DivergentTx) {
	t.Helper()
	if err := s2.Exec(ctx, "INSERT INTO test.w VALUES (11, 'other')"); err != nil {
		t.Fatal(err)
	}
	before := wRows(t, ctx, s2)
	rr, err := ReplayDivergence(ctx, opts, s2.Addr(), txs)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Applied != 0 || !strings.Contains(rr.Conflict, "transaction 1 of 3 (GTID "+txs[0].GTID) || !strings.Contains(rr.Conflict, "Duplicate entry '11'") {
		t.Errorf("replay over a duplicate key: %+v", rr)
	}
	if got := wRows(t, ctx, s2); got != before {
		t.Errorf("a conflicting replay changed the new master: %s, before %s", got, before)
	}
	// The duplicate gone, the row the old master updated changed.
	if err := s2.Exec(ctx, "DELETE FROM test.w WHERE id = 11", "UPDATE test.w SET v = 'uno' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	before = wRows(t, ctx, s2)
	rr, err = ReplayDivergence(ctx, opts, s2.Addr(), txs)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Applied != 0 || !strings.Contains(rr.Conflict, "transaction 2 of 3") || !strings.Contains(rr.Conflict, "matched 0 row(s), want 1") {
		t.Errorf("replay over a changed row: %+v", rr)
	}
	if got := wRows(t, ctx, s2); got != before {
		t.Errorf("a conflicting replay changed the new master: %s, before %s", got, before)
	}
	t.Logf("conflict: %s", rr.Conflict)
	if err := s2.Exec(ctx, "UPDATE test.w SET v = 'one' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
}

// semiSyncNoAck makes s a lossless semi-sync master that no replica
// acknowledges: every commit waits (practically for ever) for an
// acknowledgement.
func semiSyncNoAck(t *testing.T, s *testbed.Server) {
	t.Helper()
	if err := s.Exec(context.Background(), "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_enabled = ON",
		"SET GLOBAL rpl_semi_sync_master_timeout = 100000000", "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON"); err != nil {
		t.Fatal(err)
	}
}

// TestDivergenceFenceSemiSyncWaiting: a former master with semi-sync on
// and a commit waiting for an acknowledgement that never comes (the
// lossless mode's old master after the partition): the fence does not hang
// on SET GLOBAL read_only (the waiting client is killed first and gets an
// error, never an acknowledgement), and the waiting transaction, in the
// binlog, is counted and read with the others. Before the fence killed the
// clients first, read_only waited for that commit for ever.
func TestDivergenceFenceSemiSyncWaiting(t *testing.T) {
	ctx := context.Background()
	c, app, plan := divergedOldMaster(t, false)
	s1 := c.Servers[0]
	semiSyncNoAck(t, s1)
	db, err := sql.Open("mysql", s1.DSN(testbed.AppUser, testbed.AppPassword, "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waiting := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "INSERT INTO test.w VALUES (77, 'waiting')")
		waiting <- err
	}()
	opts := DivergenceOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Epoch: 7}
	for deadline := time.Now().Add(20 * time.Second); ; {
		txs, err := DivergentTransactions(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(txs) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiting commit never reached the binlog: %q", txs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fenced, err := FenceDiverged(fctx, opts)
	if err != nil {
		t.Fatalf("fence with a commit waiting for semi-sync: %v", err)
	}
	t.Logf("fence: %s", fenced)
	select {
	case err := <-waiting:
		if err == nil {
			t.Error("the waiting commit was acknowledged to its client")
		}
	case <-time.After(10 * time.Second):
		t.Error("the waiting client is still waiting after the fence")
	}
	if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Errorf("read_only=%s after the fence", ro)
	}
	res, err := ReadDivergence(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Transactions); n != 4 || !strings.Contains(strings.Join(res.Transactions[3].SQL, ";"), "(77, 'waiting')") {
		t.Errorf("read %d transactions, want the 3 writes and the waiting one: %+v", n, res.Transactions)
	}
}

// TestDivergenceSemiSyncBusyClients is the lossless datacenter round's
// old master after the heal: semi-sync on with a long timeout and no
// semi-sync replica left, and four clients next to it that keep writing
// (each commit waits for an acknowledgement that never comes; a killed
// client reconnects and writes again). The fence must end at once (it
// kills the waiting clients before SET GLOBAL read_only) and its binlog
// must be readable after it: the chaos campaign's leader, which read
// before fencing, timed out on SHOW BINARY LOGS there ("context deadline
// exceeded").
//
// No write may be acknowledged before the fence. The fence itself may
// make MariaDB answer OK to a commit whose semi-sync wait it kills (in 5
// of 47 runs under CPU load): such a write must have been
// waiting when the fence began, the fence must say it ended waiting
// commits, and the write must be among the divergent transactions, so
// that after reconcile --apply and rejoin (below) every acknowledged
// write is on the new master.
func TestDivergenceSemiSyncBusyClients(t *testing.T) {
	ctx := context.Background()
	c, app, plan := divergedOldMaster(t, false)
	s1 := c.Servers[0]
	semiSyncNoAck(t, s1)
	type ackedWrite struct {
		v        int
		sent, at time.Time
	}
	var mu sync.Mutex
	var acked []ackedWrite
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				db, err := sql.Open("mysql", s1.DSN(testbed.AppUser, testbed.AppPassword, "test")+"&timeout=1s")
				if err != nil {
					return
				}
				v, sent := 1000+w*1000+i, time.Now()
				if _, err := db.ExecContext(wctx, "INSERT INTO test.w VALUES (?, 'busy')", v); err == nil {
					mu.Lock()
					acked = append(acked, ackedWrite{v: v, sent: sent, at: time.Now()})
					mu.Unlock()
				}
				db.Close()
				time.Sleep(50 * time.Millisecond)
			}
		}(w)
	}
	defer func() { stop(); wg.Wait() }()
	opts := DivergenceOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Epoch: 7}
	// Let the clients' commits pile up in the semi-sync wait.
	waitFor(t, 20*time.Second, func() bool {
		rows, err := s1.QueryRows(ctx, "SELECT STATE FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT%'")
		return err == nil && len(rows) >= 3
	})
	// Not asserted (MariaDB's behaviour, not ours): before the fence,
	// SHOW BINARY LOGS waits behind the commits waiting for semi-sync
	// (on MariaDB 10.11 it did not answer within 20 s), which is why the
	// leader fences a writable former master before it reads its binlog.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	t0 := time.Now()
	_, perr := DivergentTransactions(pctx, opts)
	pcancel()
	t.Logf("counting before the fence: %v after %s", perr, time.Since(t0))
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fenceStart := time.Now()
	fenced, err := FenceDiverged(fctx, opts)
	if err != nil {
		t.Fatalf("fence with busy clients waiting for semi-sync: %v", err)
	}
	fenceEnd := time.Now()
	t.Logf("fence in %s: %s", fenceEnd.Sub(fenceStart), fenced)
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	txs, err := DivergentTransactions(cctx, opts)
	if err != nil {
		t.Fatalf("count the divergent transactions after the fence: %v", err)
	}
	if len(txs) < 3 {
		t.Errorf("%d divergent transactions, want at least the partition's 3", len(txs))
	}
	stop()
	wg.Wait()
	for _, a := range acked {
		if a.at.Before(fenceStart) || a.sent.After(fenceEnd) {
			t.Errorf("write %d (sent %s, acknowledged %s) was acknowledged although no semi-sync replica could acknowledge it, and not by the fence's kill of its waiting commit (fence %s to %s)",
				a.v, a.sent.Format("15:04:05.000"), a.at.Format("15:04:05.000"), fenceStart.Format("15:04:05.000"), fenceEnd.Format("15:04:05.000"))
		}
	}
	if len(acked) > 0 {
		for _, a := range acked {
			t.Logf("write %d, sent %s, waiting for semi-sync, was told OK at %s by the fence's kill (fence %s to %s)",
				a.v, a.sent.Format("15:04:05.000"), a.at.Format("15:04:05.000"), fenceStart.Format("15:04:05.000"), fenceEnd.Format("15:04:05.000"))
		}
		if !strings.Contains(fenced, "waiting for a semi-sync acknowledgement") {
			t.Errorf("the fence ended commits waiting for semi-sync, one of them acknowledged, but does not say so: %q", fenced)
		}
	}

	// Then as an operator: reconcile --apply and rejoin. The rejoined old
	// master must catch up: still a semi-sync master, its applier's first
	// commit would wait for an acknowledgement nobody sends (the lossless
	// datacenter round's old master stalled so).
	s2 := c.Servers[1]
	res, err := ReadDivergence(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := ReplayDivergence(ctx, opts, s2.Addr(), res.Transactions)
	if err != nil || rr.Conflict != "" {
		t.Fatalf("replay: %+v %v", rr, err)
	}
	r := &Replayed{Transactions: len(res.Transactions), Epoch: opts.Epoch, Master: rr.Master, GTID: rr.GTID, Start: rr.Start, End: rr.End}
	if _, err := Rejoin(ctx, RejoinOptions{Options: Options{App: app, Out: tlog{t}}, Host: s1.Addr(), Plan: plan, Replayed: r}); err != nil {
		t.Fatalf("rejoin after the replay: %v", err)
	}
	if on, err := s1.QueryString(ctx, "SELECT @@global.rpl_semi_sync_master_enabled"); err != nil || on != "0" {
		t.Errorf("rejoined old master: rpl_semi_sync_master_enabled=%q (%v), want 0", on, err)
	}
	if err := s2.Exec(ctx, "INSERT INTO test.w VALUES (50, 'last')"); err != nil {
		t.Fatal(err)
	}
	if err := s1.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
		t.Fatalf("the rejoined old master does not catch up: %v", err)
	}
	// Every write a client was told OK for is on the new master now.
	for _, a := range acked {
		if n, err := s2.QueryString(ctx, "SELECT COUNT(*) FROM test.w WHERE id = ?", a.v); err != nil || n != "1" {
			t.Errorf("acknowledged write %d is not on the new master after reconcile --apply: count %q (%v)", a.v, n, err)
		}
	}
}
