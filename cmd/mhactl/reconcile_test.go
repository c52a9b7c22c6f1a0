package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

// reconcileFake is the fake backend with a diverged server3 (a test
// double: the real Reconcile reads a MariaDB binlog, tested in package
// manager with real servers).
type reconcileFake struct {
	*apitest.FakeBackend
	applied bool
}

func (f *reconcileFake) Reconcile(_ context.Context, app, server string, apply bool) (*api.Reconcile, error) {
	if server != "server3" {
		return nil, &api.Error{Status: 404, Msg: "no divergence is recorded for " + server}
	}
	v := func(s string) *string { return &s }
	r := &api.Reconcile{App: app, Server: server, Epoch: 4, File: "/var/lib/mharaft/divergence_app1_server3_epoch4.sql", State: "detected",
		Transactions: []api.ReconcileTx{{GTID: "0-1-57", Binlog: "mysql-bin.000002:342", Time: time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC),
			Tables: []string{"jepsen.w"}, SQL: []string{"INSERT INTO `jepsen`.`w` (`id`, `v`) VALUES (123, 'abc')"},
			Rows: []api.ReconcileRow{{Table: "jepsen.w", Type: "insert", Columns: []string{"id", "v"}, Values: []*string{v("123"), v("abc")}}}}}}
	if apply {
		f.applied = true
		r.Conflict = "transaction 1 of 1 (GTID 0-1-57 at mysql-bin.000002:342): INSERT ...: Duplicate entry '123' for key 'PRIMARY'; nothing was applied"
	}
	return r, nil
}

// TestReconcileCLI: `mhactl reconcile --json` prints the contract's field
// names; --apply stopped by a conflict exits 1 naming it; an unknown
// divergence exits 2; status shows the diverged server and the command.
func TestReconcileCLI(t *testing.T) {
	fake := &reconcileFake{FakeBackend: apitest.NewFakeBackend()}
	s := &fake.State.Apps[0].Servers[2]
	s.Health, s.HealthDetail = api.HealthDiverged, "1 transaction(s) the current master lacks (failover of epoch 4); fenced; run `mhactl reconcile --app app1 --server server3`"
	ts := httptest.NewServer(api.NewHandler(fake, api.ServerConfig{Token: clusterTestToken}, nil))
	t.Cleanup(ts.Close)
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(clusterTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fc := &fakeCluster{fake: fake.FakeBackend, url: ts.URL, tokenFile: tf}

	r := fc.mhactl(t, "reconcile", "--app", "app1", "--server", "server3", "--json")
	if r.code != 0 {
		t.Fatalf("reconcile --json: %s", r)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &top); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if got, want := keys(top), []string{"app", "applied", "conflict", "epoch", "file", "server", "state", "transactions"}; !reflect.DeepEqual(got, want) {
		t.Errorf("top-level fields %v, want %v", got, want)
	}
	var txs []map[string]json.RawMessage
	json.Unmarshal(top["transactions"], &txs)
	if len(txs) != 1 || !reflect.DeepEqual(keys(txs[0]), []string{"binlog", "gtid", "rows", "sql", "tables", "time"}) {
		t.Errorf("transaction fields %v", txs)
	}
	var rows []map[string]json.RawMessage
	json.Unmarshal(txs[0]["rows"], &rows)
	var values []string
	if len(rows) == 1 {
		json.Unmarshal(rows[0]["values"], &values)
	}
	if len(rows) != 1 || !reflect.DeepEqual(keys(rows[0]), []string{"columns", "table", "type", "values"}) || !reflect.DeepEqual(values, []string{"123", "abc"}) {
		t.Errorf("row fields %v, values %v", rows, values)
	}

	r = fc.mhactl(t, "reconcile", "--app", "app1", "--server", "server3")
	if r.code != 0 || !strings.Contains(r.stdout, "GTID 0-1-57 at mysql-bin.000002:342") || !strings.Contains(r.stdout, "mhactl reconcile --app app1 --server server3 --apply") {
		t.Errorf("reconcile: %s", r)
	}
	r = fc.mhactl(t, "reconcile", "--app", "app1", "--server", "server3", "--apply")
	if r.code != exitProblem || !fake.applied || !strings.Contains(r.stderr, "Duplicate entry '123'") {
		t.Errorf("reconcile --apply with a conflict: %s", r)
	}
	if r := fc.mhactl(t, "reconcile", "--app", "app1", "--server", "server2"); r.code != exitUsage {
		t.Errorf("reconcile of a server without divergence: %s", r)
	}
	r = fc.mhactl(t, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "diverged") || !strings.Contains(r.stdout, "server3: diverged: 1 transaction(s)") ||
		!strings.Contains(r.stdout, "mhactl reconcile --app app1 --server server3") {
		t.Errorf("status of a diverged server: %s", r)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
