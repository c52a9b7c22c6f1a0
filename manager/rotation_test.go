package manager_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/manager/managertest"
)

// TestTokenRotationRunningCluster (issue 13): the token of three real
// managers is rotated without downtime in the three rolling steps of
// docs/SECURITY.md, with --accept-token-file: (1) every manager keeps the
// old token and accepts the new one, (2) every manager sends the new token
// and accepts the old one, (3) the new token only. After every restart of
// one manager the group has a leader that every manager agrees on and the
// API answers the token the operators use at that step; at the end the old
// token is refused.
func TestTokenRotationRunningCluster(t *testing.T) {
	bin := mhanodeBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	conf := unreachableConf(t, dir)
	mc, err := managertest.New(bin, dir, 3, func(int) []string { return []string{conf} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mc.Close()
		if t.Failed() {
			for i, n := range mc.Nodes {
				t.Logf("==== log of %s ====\n%s", n.ID, tail(mc.Log(i), 20000))
			}
		}
	})
	oldTok, newTok := mc.Token, "rotated-token-abcdefghijklmnop"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldFile, newFile := mc.TokenFile, write("token-new", newTok)
	if err := mc.StartAll(); err != nil {
		t.Fatal(err)
	}
	// agree waits until every manager answers tok and names the same leader.
	agree := func(step string, tok string) {
		t.Helper()
		for ctx.Err() == nil {
			leaders := map[string]bool{}
			ok := true
			for _, n := range mc.Nodes {
				c := &api.Client{Addrs: []string{n.HTTPAddr}, Token: tok}
				st, err := c.Status(ctx)
				if err != nil || st.Leader == "" {
					ok = false
					break
				}
				leaders[st.Leader] = true
			}
			if ok && len(leaders) == 1 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: the managers did not agree on a leader answering the token in time", step)
	}
	agree("start", oldTok)
	restart := func(step string, i int, tokenFile string, accept string, apiTok string) {
		t.Helper()
		if err := mc.Stop(i); err != nil {
			t.Fatal(err)
		}
		if err := mc.Wait(i, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		args := mc.Args(i)
		for k := range args {
			if args[k] == "--token-file" {
				args[k+1] = tokenFile
			}
		}
		if accept != "" {
			args = append(args, "--accept-token-file", accept)
		}
		if err := mc.StartWith(i, args); err != nil {
			t.Fatal(err)
		}
		agree(fmt.Sprintf("%s, %s restarted", step, mc.Nodes[i].ID), apiTok)
	}
	for i := range mc.Nodes {
		restart("step 1 (accept the new token)", i, oldFile, newFile, oldTok)
	}
	for i := range mc.Nodes {
		// Managers not restarted yet send the old token; those restarted
		// send the new one: operators may use either until step 3.
		restart("step 2 (send the new token)", i, newFile, oldFile, oldTok)
	}
	agree("after step 2, operators on the new token", newTok)
	for i := range mc.Nodes {
		restart("step 3 (the new token only)", i, newFile, "", newTok)
	}
	c := &api.Client{Addrs: []string{mc.Nodes[0].HTTPAddr}, Token: oldTok}
	if _, err := c.Status(ctx); err == nil {
		t.Fatal("the old token is still accepted after the rotation")
	}
}
