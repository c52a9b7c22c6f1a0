package failover

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
	"github.com/mharaft/mharaft/topology"
)

// TestMultiTier is issue 14 item 3: server4 replicates from server3, a
// replica of the master server1 (a chain below a replica). Without
// multi_tier_slave check-repl, the switch and the failover refuse it;
// with multi_tier_slave=1 check-repl passes, refuses a writable
// intermediate, an online switch to server2 leaves server4 below server3
// (server3 and the old master follow server2), and a failover after
// server2 dies never elects server4 (its candidate_master=1 and a
// preference for it notwithstanding: it is below a replica) and leaves it
// below server3; a row written on the new master reaches every server.
func TestMultiTier(t *testing.T) {
	ctx := context.Background()
	c := startWithT1(t, testbed.Options{N: 4})
	s1, s2, s3, s4 := c.Servers[0], c.Servers[1], c.Servers[2], c.Servers[3]
	replicateFromCurrent(t, ctx, s4, s3)
	plain, multi := loadApp(t, c), loadApp(t, c, "multi_tier_slave=1")

	wrong := false
	for _, p := range topology.Check(topology.Discover(ctx, plain)) {
		wrong = wrong || p.Code == topology.CodeWrongMaster && p.Server == "server4" && p.Severity == topology.Error
	}
	if !wrong {
		t.Fatal("check-repl without multi_tier_slave accepts server4 below server3")
	}
	_, err := Switch(ctx, Options{App: plain, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("switch without multi_tier_slave: %v, want ErrRefused", err)
	}
	topo := topology.Discover(ctx, multi)
	if errs := checkErrors(topology.Check(topo)); len(errs) > 0 {
		t.Fatalf("check-repl with multi_tier_slave=1 refuses the chain: %v", errs)
	}
	if !topo.BelowReplica(topo.ByAddr("server4")) {
		t.Fatal("server4 is not seen below a replica")
	}
	if err := s3.Exec(ctx, "SET GLOBAL read_only=0"); err != nil {
		t.Fatal(err)
	}
	if _, err := Switch(ctx, Options{App: multi, Yes: true, Out: tlog{t}, NewMaster: s2.Addr()}); !errors.Is(err, ErrRefused) {
		t.Fatalf("switch with the intermediate server3 writable: %v, want ErrRefused", err)
	}
	if err := s3.Exec(ctx, "SET GLOBAL read_only=1"); err != nil {
		t.Fatal(err)
	}

	if _, err := Switch(ctx, Options{App: multi, Yes: true, Out: tlog{t}, NewMaster: s2.Addr(), OrigMasterIsNewSlave: true}); err != nil {
		t.Fatalf("online switch to server2 with multi_tier_slave=1: %v", err)
	}
	wantReplicaOf(t, ctx, s1, s2, false)
	wantReplicaOf(t, ctx, s3, s2, false)
	wantReplicaOf(t, ctx, s4, s3, false)
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := s4.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	// server2 dies with server1 behind (its IO thread stopped before row 3).
	if err := s1.StopIOThread(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Exec(ctx, "INSERT INTO test.t1 VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := s4.WaitCaughtUp(ctx, s2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s2.Kill9(); err != nil {
		t.Fatal(err)
	}
	_, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: plain, Yes: true, Out: tlog{t}}, DeadMaster: s2.Addr()})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("failover without multi_tier_slave: %v, want ErrRefused", err)
	}
	// The same manager_workdir as the failover that follows at once: a
	// refused run ends its background reads (phase 1 starts them before
	// the election) before it returns, so they cannot write into the next
	// run's files (a rename of a .part file failed in phase 4 when it did
	// not).
	_, err = DeadMaster(ctx, FailoverOptions{Options: Options{App: multi, Yes: true, Out: tlog{t}, NewMaster: s4.Addr()}, DeadMaster: s2.Addr()})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("failover preferring server4, below a replica: %v, want ErrRefused", err)
	}
	rep, err := DeadMaster(ctx, FailoverOptions{Options: Options{App: multi, Yes: true, Out: tlog{t}}, DeadMaster: s2.Addr()})
	if err != nil {
		t.Fatalf("failover with multi_tier_slave=1: %v", err)
	}
	if rep.Plan.NewMaster != "server1" && rep.Plan.NewMaster != "server3" {
		t.Fatalf("new master %q, want server1 or server3 (the direct replicas of server2)", rep.Plan.NewMaster)
	}
	newM, other := s1, s3
	if rep.Plan.NewMaster == "server3" {
		newM, other = s3, s1
	}
	wantReplicaOf(t, ctx, other, newM, false)
	wantReplicaOf(t, ctx, s4, s3, false)
	if err := newM.Exec(ctx, "INSERT INTO test.t1 VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testbed.Server{s1, s3, s4} {
		waitFor(t, 30*time.Second, func() bool {
			got, err := s.Rows(ctx)
			return err == nil && fmt.Sprint(got) == "[1 2 3 4]"
		})
	}
}
