package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

// TestSwitchOptionsValidation: a switch takes MHA's online switch flags
// (check_only, skip_change_master, skip_disable_read_only, ssh_reachable,
// running_updates_limit, running_seconds_limit); a body without them
// decodes as before; out-of-range values and the flags on another kind
// are refused naming the field.
func TestSwitchOptionsValidation(t *testing.T) {
	st := apitest.NewFakeBackend().State
	a, err := api.DecodeAction([]byte(`{"kind":"switch","app":"app1","new_master":"server2","check_only":true,"skip_change_master":true,` +
		`"skip_disable_read_only":true,"ssh_reachable":0,"running_updates_limit":5,"running_seconds_limit":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.ValidateAction(a, &st); err != nil {
		t.Fatalf("switch with every flag: %v", err)
	}
	if !a.CheckOnly || !a.SkipChangeMaster || !a.SkipDisableReadOnly || a.SSHReachable == nil || *a.SSHReachable != 0 ||
		a.RunningUpdatesLimit != 5 || a.RunningSecondsLimit != 3 {
		t.Errorf("decoded as %+v", a)
	}
	old, err := api.DecodeAction([]byte(`{"kind":"switch","app":"app1","new_master":"server2","orig_master_is_new_slave":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if old.CheckOnly || old.SkipChangeMaster || old.SkipDisableReadOnly || old.SSHReachable != nil || old.RunningUpdatesLimit != 0 || old.RunningSecondsLimit != 0 {
		t.Errorf("a body without the flags decoded as %+v", old)
	}
	for _, tc := range []struct{ body, field, msg string }{
		{`{"kind":"switch","app":"app1","ssh_reachable":3}`, "ssh_reachable", "0 (not reachable over SSH), 1 (reachable) or 2"},
		{`{"kind":"switch","app":"app1","running_updates_limit":-1}`, "running_updates_limit", "at least 1"},
		{`{"kind":"switch","app":"app1","running_seconds_limit":-5}`, "running_seconds_limit", "at least 1"},
		{`{"kind":"failover","app":"app1","check_only":true}`, "check_only", "failover does not take check_only"},
		{`{"kind":"rejoin","app":"app1","host":"server1","skip_change_master":true}`, "skip_change_master", "does not take"},
	} {
		a, err := api.DecodeAction([]byte(tc.body))
		if err == nil {
			err = api.ValidateAction(a, &st)
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Field != tc.field || !strings.Contains(e.Msg, tc.msg) {
			t.Errorf("%s: %v, want 400 on %s saying %q", tc.body, err, tc.field, tc.msg)
		}
	}
}
