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
