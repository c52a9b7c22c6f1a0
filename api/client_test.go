package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

func TestClientPrefersLeader(t *testing.T) {
	leader := apitest.NewFakeBackend()
	lts := serve(t, leader, api.ServerConfig{})
	fol := follower(lts.URL)
	fts := serve(t, fol, api.ServerConfig{})
	dead := closedAddr(t)

	c := &api.Client{Addrs: []string{dead, fts.URL, lts.URL}, Token: testToken}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "node1" || leader.StatusCalls() != 1 || fol.StatusCalls() != 0 {
		t.Fatalf("status answered by %s (leader %d calls, follower %d), want the leader", st.Node, leader.StatusCalls(), fol.StatusCalls())
	}
	res, err := c.Do(context.Background(), api.Action{Kind: api.ActionAck, App: "app1"})
	if err != nil || !res.OK {
		t.Fatalf("ack: %v %+v", err, res)
	}
	if len(leader.Calls()) != 1 {
		t.Fatal("ack did not reach the leader")
	}
}

func TestClientFallsBackToFollower(t *testing.T) {
	fol := follower("")
	fts := serve(t, fol, api.ServerConfig{})
	c := &api.Client{Addrs: []string{closedAddr(t), fts.URL}, Token: testToken}
	h, err := c.History(context.Background(), "app1")
	if err != nil || len(h) != 2 {
		t.Fatalf("history from the follower: %v %d entries", err, len(h))
	}
	// The follower has no leader: the action is refused with a clear error.
	_, err = c.Do(context.Background(), api.Action{Kind: api.ActionAck, App: "app1"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 503 || !strings.Contains(err.Error(), "no raft leader") {
		t.Fatalf("ack without a leader: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	fake := apitest.NewFakeBackend()
	ts := serve(t, fake, api.ServerConfig{})
	dead1, dead2 := closedAddr(t), closedAddr(t)

	_, err := (&api.Client{Addrs: []string{dead1, dead2}, Token: testToken}).Status(context.Background())
	if !errors.Is(err, api.ErrUnreachable) || !strings.Contains(err.Error(), dead1) || !strings.Contains(err.Error(), dead2) {
		t.Fatalf("unreachable: %v, want ErrUnreachable naming %s and %s", err, dead1, dead2)
	}
	_, err = (&api.Client{}).Status(context.Background())
	if !errors.Is(err, api.ErrUnreachable) || !strings.Contains(err.Error(), "no API address") {
		t.Fatalf("no address: %v", err)
	}

	_, err = (&api.Client{Addrs: []string{ts.URL}, Token: "wrong"}).Status(context.Background())
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), ts.URL) {
		t.Fatalf("wrong token: %v, want a 401 *api.Error naming %s", err, ts.URL)
	}

	c := &api.Client{Addrs: []string{ts.URL}, Token: testToken}
	_, err = c.App(context.Background(), "app9")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Field != "app" {
		t.Fatalf("unknown app: %v", err)
	}
	_, err = c.Do(context.Background(), api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: "server9"})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "new_master" {
		t.Fatalf("switch to an unknown new_master: %v", err)
	}
	fake.Lock()
	fake.Result = &api.ActionResult{OK: false, Message: "phase apply_diff failed on server3"}
	fake.Unlock()
	res, err := c.Do(context.Background(), api.Action{Kind: api.ActionAck, App: "app1"})
	if err != nil || res.OK || !strings.Contains(res.Message, "apply_diff") {
		t.Fatalf("failed action: %v %+v", err, res)
	}
}
