package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/mharaft/mharaft/manager/managertest"
	"github.com/mharaft/mharaft/testbed"
)

// clientPath is what an application sees of a cluster run: HAProxy in
// front of the servers, configured as docs/HAPROXY.md says (its checks ask
// the managers' routing endpoints), and a Writer inserting through it.
type clientPath struct {
	hp *testbed.HAProxy
	w  *testbed.Writer
}

// startClientPath starts HAProxy for app1 of db, checked through every
// manager of mc, and an application writing through it; it returns once
// a write reached the master through HAProxy.
func startClientPath(ctx context.Context, dir string, db *testbed.Cluster, mc *managertest.Cluster) (*clientPath, error) {
	o := testbed.HAProxyOptions{App: "app1"}
	for _, s := range db.Servers {
		o.Servers = append(o.Servers, testbed.HAProxyServer{Name: s.Name(), Addr: s.Addr()})
	}
	for _, n := range mc.Nodes {
		o.Managers = append(o.Managers, n.HTTPAddr)
	}
	p, err := testbed.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	o.WriteAddr = fmt.Sprintf("127.0.0.1:%d", p)
	hp, err := testbed.StartHAProxy(ctx, filepath.Join(dir, "haproxy"), o)
	if err != nil {
		return nil, err
	}
	c := &clientPath{hp: hp}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		up, err := hp.UpServers("primary")
		if err == nil && slices.Equal(up, []string{db.Master().Name()}) {
			break
		}
		if wctx.Err() != nil {
			c.close()
			return nil, fmt.Errorf("HAProxy does not route writes to the master %s: UP %v (%v); log %s", db.Master().Name(), up, err, hp.LogPath)
		}
		time.Sleep(50 * time.Millisecond) // polls HAProxy's stats socket: it has no notification
	}
	if c.w, err = testbed.StartWriter(wctx, o.WriteAddr, "test", "haproxy_writes"); err != nil {
		c.close()
		return nil, err
	}
	if _, err := c.w.WaitAck(wctx, time.Time{}, db.Master().Port); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// outage is the client-visible outage: from killed to the first write
// acknowledged through HAProxy of those sent after the old master's
// process ended (dead), which must come from newMaster.
func (c *clientPath) outage(ctx context.Context, killed, dead time.Time, newMaster *testbed.Server) (time.Duration, error) {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	a, err := c.w.WaitAck(wctx, dead, 0)
	if err != nil {
		return 0, fmt.Errorf("%w (haproxy log %s)", err, c.hp.LogPath)
	}
	if a.Port != newMaster.Port {
		return 0, fmt.Errorf("the first write through HAProxy after the kill was acknowledged by port %d, not by the new master %s", a.Port, newMaster.Name())
	}
	return a.At.Sub(killed), nil
}

func (c *clientPath) close() {
	if c.w != nil {
		c.w.Stop()
	}
	c.hp.Stop()
}
