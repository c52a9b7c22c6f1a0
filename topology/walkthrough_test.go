package topology

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/testbed"
)

// The walkthrough's state, in both replication modes: server3 is the latest
// replica, server2 the oldest, with the positions the servers report; and
// the same after the master is shut down (dead master).
func TestDiscoverWalkthrough(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		name := map[bool]string{false: "filepos", true: "gtid"}[gtid]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := testbed.Start(t, testbed.Options{N: 3, GTID: gtid})
			if err := c.Walkthrough(ctx); err != nil {
				t.Fatal(err)
			}
			app := loadApp(t, c)
			m, s2, s3 := c.Servers[0], c.Servers[1], c.Servers[2]

			// What the servers themselves say.
			ms, err := m.QueryRows(ctx, "SHOW MASTER STATUS")
			if err != nil || len(ms) != 1 {
				t.Fatalf("SHOW MASTER STATUS on server1: %v %v", ms, err)
			}
			masterPos := dialect.Pos{File: ms[0]["File"], Pos: mustUint(t, ms[0]["Position"])}
			st2, err := s2.SlaveStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st3, err := s3.SlaveStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pos2 := dialect.Pos{File: st2["Master_Log_File"], Pos: mustUint(t, st2["Read_Master_Log_Pos"])}
			pos3 := dialect.Pos{File: st3["Master_Log_File"], Pos: mustUint(t, st3["Read_Master_Log_Pos"])}
			if !pos2.Less(pos3) || !pos3.Less(masterPos) {
				t.Fatalf("walkthrough positions not ordered: server2 %s, server3 %s, master %s", pos2, pos3, masterPos)
			}

			check := func(t *testing.T, masterAlive bool) *Topology {
				topo := discover(t, app)
				if topo.Master == nil || topo.Master.Name() != "server1" {
					t.Fatalf("master = %v, want server1; problems:\n%s", topo.Master, dump(topo.Problems))
				}
				if topo.Master.Reachable != masterAlive {
					t.Fatalf("master reachable = %v, want %v (err %v)", topo.Master.Reachable, masterAlive, topo.Master.Err)
				}
				if masterAlive && (topo.Master.MasterStatus == nil || *topo.Master.MasterStatus != masterPos) {
					t.Errorf("master status = %v, want %s", topo.Master.MasterStatus, masterPos)
				}
				latest, oldest := topo.Latest(), topo.Oldest()
				if len(latest) != 1 || latest[0].Name() != "server3" {
					t.Fatalf("latest = %v, want [server3]", names(latest))
				}
				if len(oldest) != 1 || oldest[0].Name() != "server2" {
					t.Fatalf("oldest = %v, want [server2]", names(oldest))
				}
				if got := latest[0].ReadPos(); got != pos3 {
					t.Errorf("server3 read position = %s, SHOW SLAVE STATUS says %s", got, pos3)
				}
				if got := oldest[0].ReadPos(); got != pos2 {
					t.Errorf("server2 read position = %s, SHOW SLAVE STATUS says %s", got, pos2)
				}
				if got := latest[0].Replica.ExecPos(); got.String() != st3["Relay_Master_Log_File"]+":"+st3["Exec_Master_Log_Pos"] {
					t.Errorf("server3 exec position = %s, SHOW SLAVE STATUS says %s:%s", got, st3["Relay_Master_Log_File"], st3["Exec_Master_Log_Pos"])
				}
				if !latest[0].ReadPos().Less(masterPos) {
					t.Errorf("server3 read %s, not behind the master's %s", latest[0].ReadPos(), masterPos)
				}
				wantUsing := map[bool]string{false: "No", true: "Slave_Pos"}[gtid]
				for _, r := range topo.Replicas {
					if r.Replica == nil || r.Replica.UsingGTID != wantUsing || r.Replica.IORunning != "No" || !r.Replica.SQLRunning {
						t.Errorf("%s replica status %+v, want Using_Gtid=%s, IO No, SQL Yes", r.Name(), r.Replica, wantUsing)
					}
					if r.Upstream != topo.Master {
						t.Errorf("%s upstream = %v, want the master", r.Name(), r.Upstream)
					}
				}
				if gtid && latest[0].GTIDSlavePos != st3["Gtid_IO_Pos"] {
					t.Errorf("server3 gtid_slave_pos %q != Gtid_IO_Pos %q", latest[0].GTIDSlavePos, st3["Gtid_IO_Pos"])
				}
				var tree bytes.Buffer
				Tree(topo, &tree)
				for _, want := range []string{
					fmt.Sprintf("127.0.0.1(%s) (current master", m.Addr()),
					fmt.Sprintf("\n +--127.0.0.1(%s)\n", s2.Addr()),
					fmt.Sprintf("\n +--127.0.0.1(%s)\n", s3.Addr()),
					"read " + pos3.String(),
				} {
					if !strings.Contains(tree.String(), want) {
						t.Errorf("tree lacks %q:\n%s", want, tree.String())
					}
				}
				t.Logf("tree:\n%s", tree.String())
				return topo
			}

			t.Run("alive", func(t *testing.T) {
				ps := Check(check(t, true))
				// The walkthrough stopped both IO threads (no error): check-repl must say so, as a warning.
				wantProblem(t, ps, CodeThreadStopped, "server2", Warning, "IO thread is not running")
				wantProblem(t, ps, CodeThreadStopped, "server3", Warning, "IO thread is not running")
			})
			t.Run("dead master", func(t *testing.T) {
				if err := m.Shutdown(); err != nil {
					t.Fatal(err)
				}
				topo := check(t, false)
				ps := Check(topo)
				wantProblem(t, ps, CodeUnreachable, "server1", Error, "the master is unreachable", "failover")
				// A dead master explains the stopped IO threads: no noise about them.
				if p := findProblem(ps, CodeThreadStopped, "server2"); p != nil {
					t.Errorf("IO thread reported with a dead master: %s", p)
				}
				var tree bytes.Buffer
				Tree(topo, &tree)
				if !strings.Contains(tree.String(), "(current master, unreachable)") {
					t.Errorf("tree does not mark the dead master:\n%s", tree.String())
				}
			})
		})
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func names(ss []*ServerState) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	return out
}
