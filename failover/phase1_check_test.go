package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/testbed"
)

// TestNotWorkingReplica: what phase 1 refuses from the replica status of
// a server that answered.
func TestNotWorkingReplica(t *testing.T) {
	dead := &config.Server{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306}
	of := func(file string, read, exec, relay uint64) *dialect.ReplicaStatus {
		return &dialect.ReplicaStatus{MasterHost: "10.0.0.1", MasterPort: 3306, MasterLogFile: file, ReadMasterLogPos: read,
			RelayMasterLogFile: file, ExecMasterLogPos: exec, RelayLogPos: relay, MasterServerID: 101}
	}
	other := of("mysql-bin.000003", 800, 800, 1100)
	other.MasterHost = "10.0.0.9"
	for _, tc := range []struct {
		name string
		rs   *dialect.ReplicaStatus
		want string // in the reason; "" accepted
	}{
		{"replicating", of("mysql-bin.000003", 800, 800, 1100), ""},
		{"IO thread stopped behind", of("mysql-bin.000002", 4000, 3000, 900), ""},
		{"restarted, not started", &dialect.ReplicaStatus{MasterHost: "db1", MasterPort: 3306, MasterLogFile: "mysql-bin.000001",
			ReadMasterLogPos: 820, ExecMasterLogPos: 820, RelayLogPos: 1119}, ""},
		{"RESET SLAVE ALL", nil, "not a replica"},
		{"another master", other, "replicates from 10.0.0.9:3306"},
		{"RESET SLAVE", of("", 4, 0, 1119), "Master_Log_File is empty"},
		{"configured, never started", of("mysql-bin.000001", 4, 4, 4), "never started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := notWorkingReplica(&node{srv: &config.Server{Name: "server4"}, replica: tc.rs}, dead)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("notWorkingReplica = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFailoverNotWorkingReplicaRefused (MHA's configuration check): a
// server that answers but is not a working replica of the dead master
// (RESET SLAVE ALL: no replica status; RESET SLAVE: an empty
// Master_Log_File; replication configured and never started) is refused
// in phase 1, at once and by name, and nothing is changed. With
// ignore_fail on it, it is left out as a dead one is, and the log says so.
func TestFailoverNotWorkingReplicaRefused(t *testing.T) {
	ctx := context.Background()
	c := startWithT1(t, testbed.Options{N: 4})
	m, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	stopIO(t, ctx, s3)
	if err := m.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitCaughtUp(ctx, m, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	changeToDead := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s'",
		m.Host, m.Port, testbed.ReplUser, testbed.ReplPassword)
	cases := []struct {
		name  string
		stmts []string
		why   string // in the refusal
	}{
		{"RESET SLAVE ALL", []string{"STOP SLAVE", "RESET SLAVE ALL"}, "not a replica"},
		{"RESET SLAVE", []string{"STOP SLAVE", "RESET SLAVE ALL", changeToDead + ", MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4",
			"START SLAVE", "STOP SLAVE", "RESET SLAVE"}, "Master_Log_File is empty"},
		{"configured, never started", []string{"STOP SLAVE", "RESET SLAVE ALL", changeToDead + ", MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4"},
			"never started"},
		{"configured by GTID, never started", []string{"STOP SLAVE", "RESET SLAVE ALL", changeToDead + ", MASTER_USE_GTID=slave_pos"},
			"Master_Log_File is empty"},
	}
	app := loadApp(t, c)
	s4conf := app.Server("server4")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s4.Exec(ctx, tc.stmts...); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			_, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: tlog{t},
				NewMaster: s2.Addr(), WaitTimeout: 30 * time.Second}, DeadMaster: m.Addr()})
			took := time.Since(t0)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("failover with %s on server4: %v, want refused", tc.name, err)
			}
			if took > 10*time.Second {
				t.Errorf("refused after %s, want at once", took.Round(time.Millisecond))
			}
			msg := err.Error()
			for _, want := range []string{s4conf.String(), "[server4]", tc.why, "ignore_fail"} {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q does not say %q", msg, want)
				}
			}
			// Nothing changed: server2 and server3 still replicate from
			// the dead master, read_only.
			for _, s := range []*testbed.Server{s2, s3} {
				st, err := s.SlaveStatus(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st == nil || st["Master_Port"] != fmt.Sprint(m.Port) {
					t.Errorf("%s no longer replicates from the dead master after a refusal: %v", s.Name(), st)
				}
				if ro, _ := s.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
					t.Errorf("%s read_only=%s after a refusal", s.Name(), ro)
				}
			}
		})
	}

	// ignore_fail: server4 (left as "configured by GTID, never started")
	// is skipped, named in the log and the report; the others recover.
	s4conf.IgnoreFail = true
	out, buf := teeLog(t)
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: app, Yes: true, Out: out,
		NewMaster: s2.Addr(), WaitTimeout: 30 * time.Second}, DeadMaster: m.Addr()})
	if err != nil {
		t.Fatalf("failover with ignore_fail on server4: %v", err)
	}
	if !strings.Contains(buf.String(), s4conf.String()+" is alive but not a working replica") ||
		!strings.Contains(buf.String(), "ignored (ignore_fail)") {
		t.Errorf("the log does not say server4 was skipped as not a working replica")
	}
	found := false
	for _, o := range rep.Replicas {
		if o.Server == "server4" {
			found = true
			if o.OK || !strings.Contains(o.State, "ignore_fail") {
				t.Errorf("server4's outcome: %+v", o)
			}
		}
	}
	if !found {
		t.Errorf("the report does not name server4: %+v", rep.Replicas)
	}
	wantRows(t, ctx, s2, 1, 2)
	wantRows(t, ctx, s3, 1, 2)
	wantReplicaOf(t, ctx, s3, s2, false)
	if st, err := s4.SlaveStatus(ctx); err != nil || st == nil || st["Master_Port"] != fmt.Sprint(m.Port) {
		t.Errorf("server4 was changed although ignored: %v (%v)", st, err)
	}
}
