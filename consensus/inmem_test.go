package consensus

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mharaft/mharaft/fsm"
)

// inmemCluster is N real raft.Raft nodes with the real FSM, in-memory
// stores and in-memory transports that tests can partition.
type inmemCluster struct {
	t      *testing.T
	rafts  []*raft.Raft
	fsms   []*fsm.FSM
	trans  []*raft.InmemTransport
	addrs  []raft.ServerAddress
	grants *grantLog
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newInmemCluster(t *testing.T, n int) *inmemCluster {
	c := &inmemCluster{t: t, grants: &grantLog{}}
	var conf raft.Configuration
	for i := 0; i < n; i++ {
		addr, tr := raft.NewInmemTransport("")
		c.trans = append(c.trans, tr)
		c.addrs = append(c.addrs, addr)
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("n%d", i)), Address: addr})
	}
	for i := range c.trans {
		for j := range c.trans {
			if i != j {
				c.trans[i].Connect(c.addrs[j], c.trans[j])
			}
		}
	}
	for i := 0; i < n; i++ {
		rc := raft.DefaultConfig()
		rc.LocalID = conf.Servers[i].ID
		rc.HeartbeatTimeout = 50 * time.Millisecond
		rc.ElectionTimeout = 50 * time.Millisecond
		rc.LeaderLeaseTimeout = 50 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.Logger = testLogger(t, string(rc.LocalID))
		logs := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(rc, logs, logs, snaps, c.trans[i], conf); err != nil {
			t.Fatalf("bootstrap %s: %v", rc.LocalID, err)
		}
		f := fsm.New()
		r, err := raft.NewRaft(rc, &recordingFSM{FSM: f, node: string(rc.LocalID), grants: c.grants}, logs, logs, snaps, c.trans[i])
		if err != nil {
			t.Fatalf("start %s: %v", rc.LocalID, err)
		}
		c.rafts = append(c.rafts, r)
		c.fsms = append(c.fsms, f)
	}
	t.Cleanup(func() {
		for _, r := range c.rafts {
			r.Shutdown().Error()
		}
	})
	return c
}

// leader polls until exactly one node among members (other than not) is leader.
func (c *inmemCluster) leader(members []int, not int) int {
	c.t.Helper()
	found := -1
	eventually(c.t, 5*time.Second, fmt.Sprintf("a single leader among %v", members), func() bool {
		count := 0
		for _, i := range members {
			if c.rafts[i].State() == raft.Leader && i != not {
				found = i
				count++
			}
		}
		return count == 1
	})
	return found
}

// partition cuts every link between the two groups.
func (c *inmemCluster) partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			c.trans[i].Disconnect(c.addrs[j])
			c.trans[j].Disconnect(c.addrs[i])
		}
	}
}

func (c *inmemCluster) heal() {
	for i := range c.trans {
		for j := range c.trans {
			if i != j {
				c.trans[i].Connect(c.addrs[j], c.trans[j])
			}
		}
	}
}

func (c *inmemCluster) apply(i int, cmd []byte) (any, error) {
	f := c.rafts[i].Apply(cmd, time.Second)
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Response(), nil
}

func lockCmd(holder string, at time.Time) []byte {
	return fsm.EncodeAcquireLock(fsm.AcquireLockCmd{App: "app1", Holder: holder, Kind: fsm.KindSwitch, OldMaster: "127.0.0.1:3306", At: at})
}

func all(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestInmemPartitionedLeaderCannotGrantLock(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			c := newInmemCluster(t, n)
			old := c.leader(all(n), -1)
			reg := fsm.EncodeRegisterApp(fsm.RegisterAppCmd{App: "app1", LastFailoverMinute: 480, At: t0,
				Servers: []fsm.Server{{Name: "server1", Hostname: "127.0.0.1", Port: 3306}}})
			if _, err := c.apply(old, reg); err != nil {
				t.Fatal(err)
			}
			if resp, err := c.apply(old, lockCmd("before", t0)); err != nil || resp.(fsm.Lock).Epoch != 1 {
				t.Fatalf("first grant: %v %v", resp, err)
			}
			if _, err := c.apply(old, fsm.EncodeReleaseLock(fsm.ReleaseLockCmd{App: "app1", Epoch: 1, Result: fsm.ResultFailed, At: t0})); err != nil {
				t.Fatal(err)
			}

			// The leader and a minority on one side, the majority on the other.
			minority := []int{old}
			var majority []int
			for i := 0; i < n; i++ {
				if i == old {
					continue
				}
				if len(minority) < (n-1)/2 {
					minority = append(minority, i)
				} else {
					majority = append(majority, i)
				}
			}
			c.partition(minority, majority)
			t.Logf("leader n%d isolated with %v; majority %v", old, minority, majority)

			_, err := c.apply(old, lockCmd("isolated", t0))
			if err == nil {
				t.Fatal("AcquireLock on the isolated leader committed")
			}
			t.Logf("isolated leader's apply failed as it must: %v", err)
			if !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrEnqueueTimeout) {
				t.Fatalf("isolated leader's apply: unexpected error %v", err)
			}

			nl := c.leader(majority, old)
			resp, err := c.apply(nl, lockCmd("majority", t0))
			if err != nil {
				t.Fatalf("new leader n%d: %v", nl, err)
			}
			if l, ok := resp.(fsm.Lock); !ok || l.Epoch != 2 || l.Holder != "majority" {
				t.Fatalf("new leader's grant: %#v, want epoch 2 for majority", resp)
			}

			c.heal()
			// Every FSM converges on the majority's state.
			want, _ := c.fsms[nl].App("app1")
			for i := 0; i < n; i++ {
				var got fsm.AppState
				eventually(t, 5*time.Second, fmt.Sprintf("n%d converges on the majority's state", i), func() bool {
					got, _ = c.fsms[i].App("app1")
					return reflect.DeepEqual(got, want)
				})
			}
			if want.Lock == nil || want.Lock.Holder != "majority" || want.LastEpoch != 2 {
				t.Fatalf("final lock %+v last epoch %d", want.Lock, want.LastEpoch)
			}
			checkGrants(t, c.grants.all(), n)
		})
	}
}

// checkGrants: no grant to the isolated leader anywhere, and each epoch
// was granted by one log entry to one holder, on every node.
func checkGrants(t *testing.T, grants []grant, n int) {
	t.Helper()
	type key struct {
		index  uint64
		holder string
	}
	byEpoch := map[uint64]map[key]int{}
	for _, g := range grants {
		if g.holder == "isolated" {
			t.Fatalf("node %s applied a grant to the isolated leader: %+v", g.node, g)
		}
		if byEpoch[g.epoch] == nil {
			byEpoch[g.epoch] = map[key]int{}
		}
		byEpoch[g.epoch][key{g.index, g.holder}]++
	}
	for epoch, ks := range byEpoch {
		if len(ks) != 1 {
			t.Fatalf("epoch %d granted by different entries: %v", epoch, ks)
		}
		for k, count := range ks {
			if count != n {
				t.Fatalf("epoch %d (%+v) applied on %d of %d nodes", epoch, k, count, n)
			}
		}
	}
	if len(byEpoch) != 2 {
		t.Fatalf("want grants for epochs 1 and 2, got %v", byEpoch)
	}
}
