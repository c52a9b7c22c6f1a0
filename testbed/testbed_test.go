package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWalkthroughState(t *testing.T) {
	for _, gtid := range []bool{false, true} {
		name := map[bool]string{false: "filepos", true: "gtid"}[gtid]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c := Start(t, Options{N: 3, GTID: gtid})
			t.Logf("3 servers replicating after %s", time.Since(start))
			ctx := context.Background()
			st, err := c.Servers[1].SlaveStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantGTID := map[bool]string{false: "No", true: "Slave_Pos"}[gtid]
			if st["Using_Gtid"] != wantGTID {
				t.Fatalf("Using_Gtid = %q, want %q", st["Using_Gtid"], wantGTID)
			}
			if err := c.Walkthrough(ctx); err != nil {
				t.Fatal(err)
			}
			want := [][]int{{1, 2, 3}, {1}, {1, 2}}
			for i, s := range c.Servers {
				got, err := s.Rows(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want[i]) {
					t.Errorf("%s rows = %v, want %v", s.Name(), got, want[i])
				}
			}
		})
	}
}

func TestSSHDVerifiesHostKey(t *testing.T) {
	c := Start(t, Options{N: 1})
	out, err := exec.Command("ssh", "-i", c.SSH.ClientKey, "-p", itoa(c.SSH.Port),
		"-o", "UserKnownHostsFile="+c.SSH.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		c.SSH.User+"@"+c.SSH.Host, "ls", c.Master().DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh with the pinned host key: %v: %s", err, out)
	}
	if !contains(string(out), "mysql-bin.index") {
		t.Fatalf("ls of the datadir over ssh lacks mysql-bin.index: %s", out)
	}
}

func TestKillAndRestart(t *testing.T) {
	c := Start(t, Options{N: 2, NoSSH: true})
	ctx := context.Background()
	if err := c.Master().Kill9(); err != nil {
		t.Fatal(err)
	}
	if c.Master().Running() {
		t.Fatal("master still running after kill -9")
	}
	if err := c.Master().Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Master().QueryString(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

func TestGTIDCovers(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"0-1-5", "0-1-5", true},
		{"0-1-4", "0-1-5", false},
		{"0-2-9,1-1-1", "0-1-5", true},
		{"", "", true},
		{"", "0-1-1", false},
	} {
		if got := gtidCovers(tc.have, tc.want); got != tc.ok {
			t.Errorf("gtidCovers(%q,%q)=%v want %v", tc.have, tc.want, got, tc.ok)
		}
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
