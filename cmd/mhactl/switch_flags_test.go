package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
	"github.com/mharaft/mharaft/testbed"
)

// TestSwitchFlags: mhactl switch takes masterha_master_switch
// --master_state=alive's flags in MHA's underscore spelling and ours, and
// sends the managers those the command line set; bad values are usage
// errors that run nothing.
func TestSwitchFlags(t *testing.T) {
	zero, one := 0, 1
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
		want *api.Action
	}{
		{name: "MHA spellings", args: []string{"switch", "--app", "app1", "--new_master_host", "server2", "--check_only", "--skip_change_master",
			"--skip_disable_read_only", "--ssh_reachable=0", "--running_updates_limit=5", "--running_seconds_limit=3", "--orig_master_is_new_slave"},
			want: &api.Action{Kind: api.ActionSwitch, App: "app1", NewMaster: "server2", OrigMasterIsNewSlave: true, CheckOnly: true,
				SkipChangeMaster: true, SkipDisableReadOnly: true, SSHReachable: &zero, RunningUpdatesLimit: 5, RunningSecondsLimit: 3}},
		{name: "our spellings", args: []string{"switch", "--app", "app1", "--check-only", "--ssh-reachable", "1"},
			want: &api.Action{Kind: api.ActionSwitch, App: "app1", CheckOnly: true, SSHReachable: &one}},
		{name: "defaults are not sent", args: []string{"switch", "--app", "app1", "--yes"},
			want: &api.Action{Kind: api.ActionSwitch, App: "app1"}},
		{name: "ssh_reachable out of range", args: []string{"switch", "--app", "app1", "--ssh_reachable=3"}, code: exitUsage,
			err: "it takes 0 (not reachable over SSH), 1 (reachable) or 2 (unknown)"},
		{name: "running_seconds_limit 0", args: []string{"switch", "--app", "app1", "--running_seconds_limit=0"}, code: exitUsage,
			err: "--running-seconds-limit=0: seconds, at least 1"},
		{name: "running_updates_limit 0", args: []string{"switch", "--app", "app1", "--running_updates_limit=0"}, code: exitUsage,
			err: "--running-updates-limit=0: seconds, at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := apitest.NewFakeBackend()
			fc := startFakeCluster(t, fake)
			r := fc.mhactl(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.err) {
				t.Fatalf("want exit %d, stderr with %q; got %v", tc.code, tc.err, r)
			}
			wantCall(t, fake.Calls(), tc.want)
		})
	}
}

// TestSwitchLocalCheckOnly: `mhactl switch --local --check_only` with
// MHA's spellings checks, prints the plan, exits 0 and changes nothing.
func TestSwitchLocalCheckOnly(t *testing.T) {
	bin := mhactlBinary(t)
	ctx := context.Background()
	c := testbed.Start(t, testbed.Options{N: 3})
	s1, s2 := c.Servers[0], c.Servers[1]
	conf, err := c.WriteAppConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runMhactl(t, bin, "switch", "--local", "--conf", conf, "--master_state=alive",
		"--new_master_host", s2.Host, fmt.Sprintf("--new_master_port=%d", s2.Port), "--check_only", "--orig_master_is_new_slave")
	if code != exitOK || !strings.Contains(out, "--check_only: every check passed") || !strings.Contains(out, "(new master)") {
		t.Fatalf("exit %d, want 0 and the plan\n%s%s", code, out, errOut)
	}
	if ro, _ := s1.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
		t.Errorf("--check_only left read_only=%s on the master", ro)
	}
	if st, err := s2.SlaveStatus(ctx); err != nil || st["Master_Port"] != fmt.Sprint(s1.Port) || st["Slave_SQL_Running"] != "Yes" {
		t.Errorf("--check_only changed server2's replication: %v %v", st["Master_Port"], err)
	}
}
