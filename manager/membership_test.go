package manager_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

// startManagers starts n mhanode processes watching a two-server testbed
// (no sshd) and waits until the leader sees app1 healthy.
func startManagers(t *testing.T, n int) *env {
	t.Helper()
	e := startEnvN(t, n, testbed.Options{N: 2, NoSSH: true}, nil, nil)
	e.waitHealthy(e.db.Master())
	return e
}

// voterIDs lists the voters node i's status shows, sorted.
func (e *env) voterIDs(ctx context.Context, i int) []string {
	e.t.Helper()
	st, err := e.mc.NodeClient(i).Status(ctx)
	if err != nil {
		e.t.Fatalf("status of %s: %v", e.mc.Nodes[i].ID, err)
	}
	var ids []string
	for _, m := range st.Managers {
		if m.Voter {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// waitRemoved waits until node i answers /healthz with 503 "removed",
// naming the way back, and refuses to serve its status.
func (e *env) waitRemoved(ctx context.Context, i int) {
	e.t.Helper()
	n := e.mc.Nodes[i]
	way := "mhactl members add " + n.ID + " " + n.RaftAddr
	logged := func() bool {
		log := e.mc.Log(i)
		return strings.Contains(log, "no longer a member of the raft group") && strings.Contains(log, way)
	}
	var last error
	for ctx.Err() == nil {
		_, err := e.mc.NodeClient(i).Health(ctx, n.HTTPAddr)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && strings.Contains(ae.Msg, "removed") && strings.Contains(ae.Msg, way) && logged() {
			break
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("%s does not report itself removed on /healthz and in its log (last /healthz: %v), log:\n%s", n.ID, last, tail(e.mc.Log(i), 3000))
	}
	_, err := e.mc.NodeClient(i).Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "removed from the raft group") {
		e.t.Fatalf("status of the removed %s: %v, want a refusal saying it was removed", n.ID, err)
	}
}

// waitMember waits until node i is healthy, has logged that it is a
// member again (when again: a process that saw itself removed), and sees itself as a voter with app1 as cond wants it (it
// caught up).
func (e *env) waitMember(ctx context.Context, i int, again bool, cond func(*api.AppStatus) bool) {
	e.t.Helper()
	n := e.mc.Nodes[i]
	for ctx.Err() == nil {
		h, err := e.mc.NodeClient(i).Health(ctx, n.HTTPAddr)
		if err == nil && h.OK && (!again || strings.Contains(e.mc.Log(i), "a member of the raft group again")) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("%s is not healthy, or its log does not say it is a member again:\n%s", n.ID, tail(e.mc.Log(i), 3000))
	}
	if _, err := e.mc.WaitApp(ctx, i, "app1", cond); err != nil {
		e.t.Fatalf("%s back in the group: %v", n.ID, err)
	}
	if ids := e.voterIDs(ctx, i); !slices.Contains(ids, n.ID) {
		e.t.Fatalf("%s sees the voters %v, not itself", n.ID, ids)
	}
}

// TestMembersRemoveLeaderAndRejoin: `members remove` of the leader makes
// it hand the leadership over, then the new leader removes it; the removed
// mhanode keeps running but reports "removed" (503 on /healthz, no
// status, an error in its log naming the way back); `members add` brings
// it back with no restart, caught up. A removed member that is restarted
// is refused without --rejoin (saying so), and with --rejoin plus
// `members add` it is back.
func TestMembersRemoveLeaderAndRejoin(t *testing.T) {
	ctx := ctxT(t, 4*time.Minute)
	e := startManagers(t, 4)
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := e.mc.Nodes[li]
	res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberRemove, MemberID: old.ID, Reason: "test"})
	if err != nil || !res.OK {
		t.Fatalf("members remove of the leader %s: %+v %v", old.ID, res, err)
	}
	t.Logf("members remove %s (the leader): %s", old.ID, res.Message)
	e.waitRemoved(ctx, li)
	nl, err := e.mc.Leader(ctx)
	if err != nil || nl == li {
		t.Fatalf("leader after removing %s: %d %v", old.ID, nl, err)
	}
	if !e.mc.Running(li) {
		t.Fatalf("the removed %s exited; it should keep running and report itself removed", old.ID)
	}
	if ids := e.voterIDs(ctx, nl); len(ids) != 3 || slices.Contains(ids, old.ID) {
		t.Fatalf("voters after removing %s: %v", old.ID, ids)
	}
	if !strings.Contains(e.mc.Log(li), "handing the leadership over first") {
		t.Fatalf("%s's log does not show the leadership handover", old.ID)
	}

	// Committed while it is out: it must catch up once added back.
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionPause, App: "app1"}); err != nil || !res.OK {
		t.Fatalf("pause: %+v %v", res, err)
	}
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberAdd, MemberID: old.ID, MemberAddr: old.RaftAddr}); err != nil || !res.OK {
		t.Fatalf("members add %s back: %+v %v", old.ID, res, err)
	}
	e.waitMember(ctx, li, true, func(a *api.AppStatus) bool { return a.Paused })

	// A removed member that is restarted.
	fi := (nl + 1) % len(e.mc.Nodes)
	if fi == li {
		fi = (fi + 1) % len(e.mc.Nodes)
	}
	f := e.mc.Nodes[fi]
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberRemove, MemberID: f.ID}); err != nil || !res.OK {
		t.Fatalf("members remove %s: %+v %v", f.ID, res, err)
	}
	e.waitRemoved(ctx, fi)
	if err := e.mc.Stop(fi); err != nil {
		t.Fatal(err)
	}
	if err := e.mc.Start(fi); err != nil {
		t.Fatal(err)
	}
	err = e.mc.Wait(fi, 30*time.Second)
	if log := e.mc.Log(fi); err == nil || !strings.Contains(log, "removed from the raft group") || !strings.Contains(log, "--rejoin") {
		t.Fatalf("restart of the removed %s without --rejoin: exit %v, log:\n%s", f.ID, err, tail(log, 2000))
	}
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionResume, App: "app1"}); err != nil || !res.OK {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if err := e.mc.StartWith(fi, append(e.mc.Args(fi), "--rejoin")); err != nil {
		t.Fatal(err)
	}
	e.waitRemoved(ctx, fi)
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberAdd, MemberID: f.ID, MemberAddr: f.RaftAddr}); err != nil || !res.OK {
		t.Fatalf("members add %s back: %+v %v", f.ID, res, err)
	}
	e.waitMember(ctx, fi, false, func(a *api.AppStatus) bool { return !a.Paused })
	if ids := e.voterIDs(ctx, li); len(ids) != 4 {
		t.Fatalf("voters at the end: %v, want all four", ids)
	}
}

// TestMembersRefusedWithoutForce: with three managers, removing one
// (leaving two voters) and adding a voter at an address where nothing
// listens are refused with 412 naming --force, and change nothing; with
// force both are done.
func TestMembersRefusedWithoutForce(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	e := startManagers(t, 3)
	li, err := e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := e.mc.Nodes[(li+1)%3]
	all := e.voterIDs(ctx, li)

	_, err = e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberRemove, MemberID: f.ID})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed || !strings.Contains(ae.Msg, "fewer than 3") || !strings.Contains(ae.Msg, "--force") {
		t.Fatalf("members remove %s of 3: %v, want 412 naming fewer than 3 voters and --force", f.ID, err)
	}
	t.Logf("refused: %v", err)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, err = e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberAdd, MemberID: "m9", MemberAddr: dead})
	if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed || !strings.Contains(ae.Msg, "nothing answers") || !strings.Contains(ae.Msg, dead) {
		t.Fatalf("members add m9 at %s where nothing listens: %v, want 412 saying nothing answers there", dead, err)
	}
	t.Logf("refused: %v", err)
	if got := e.voterIDs(ctx, li); !slices.Equal(got, all) {
		t.Fatalf("voters after two refusals: %v, want %v", got, all)
	}

	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberAdd, MemberID: "m9", MemberAddr: dead, Force: true}); err != nil || !res.OK {
		t.Fatalf("members add m9 --force: %+v %v", res, err)
	}
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberRemove, MemberID: "m9"}); err != nil || !res.OK {
		t.Fatalf("members remove m9 (4 to 3 voters): %+v %v", res, err)
	}
	if res, err := e.mc.Client().Do(ctx, api.Action{Kind: api.ActionMemberRemove, MemberID: f.ID, Force: true}); err != nil || !res.OK {
		t.Fatalf("members remove %s --force: %+v %v", f.ID, res, err)
	}
	li, err = e.mc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.voterIDs(ctx, li); len(got) != 2 || slices.Contains(got, f.ID) {
		t.Fatalf("voters after the forced removal of %s: %v", f.ID, got)
	}
}
