package topology

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mharaft/mharaft/testbed"
)

// TestCheckReplLogin: with the right repl_password every candidate master
// accepts the replication user; with a wrong one each candidate is
// reported (Access denied, no password in the text), a no_master server
// is not tried.
func TestCheckReplLogin(t *testing.T) {
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3, NoSSH: true})
	app := loadApp(t, c)
	if ps := CheckReplLogin(ctx, app, time.Second); len(ps) != 0 {
		t.Fatalf("right repl_password: %v", ps)
	}
	const wrong = "not-the-repl-password"
	for _, s := range app.Servers {
		s.ReplPassword = wrong
	}
	app.Servers[2].NoMaster = true
	ps := CheckReplLogin(ctx, app, time.Second)
	for _, name := range []string{"server1", "server2"} {
		wantProblem(t, ps, CodeReplLogin, name, Error, "Access denied", app.Servers[0].ReplUser)
	}
	if p := findProblem(ps, CodeReplLogin, "server3"); p != nil {
		t.Errorf("no_master server3 was checked: %v", p)
	}
	for _, p := range ps {
		if strings.Contains(p.String(), wrong) {
			t.Errorf("the password appears in %s", p)
		}
	}
}
