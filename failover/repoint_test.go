package failover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestSwitchWrongReplPassword: with a wrong repl_password the repointed
// replica cannot connect; the switch must fail naming the server and the
// server's "Access denied" (it once exited 0 with the replicas stuck in
// Connecting), without the password in the error.
func TestSwitchWrongReplPassword(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, GTID: true, NoSSH: true})
	if err := c.Servers[0].Exec(ctx, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.t1 (a INT PRIMARY KEY)",
		"INSERT INTO test.t1 VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, c)
	const wrong = "not-the-repl-password"
	for _, s := range app.Servers {
		s.ReplPassword = wrong
	}
	t0 := time.Now()
	_, err := Switch(ctx, Options{App: app, Yes: true, Out: tlog{t}, NewMaster: c.Servers[1].Addr()})
	if err == nil {
		t.Fatal("the switch succeeded although server3 cannot replicate from the new master")
	}
	t.Log(err)
	for _, want := range []string{"server3", "Access denied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("the password appears in the error")
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("a refused login took %s to report; it cannot cure itself", took)
	}
}
