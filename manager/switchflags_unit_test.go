package manager

import (
	"testing"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// TestManualFlagsJournaled: an operator's switch flags, recorded in the
// lock phase's journal detail, are read back as they were (what a leader
// that resumes the switch runs with); --check_only is never recorded; a
// journal without them (written before) reads as no flags.
func TestManualFlagsJournaled(t *testing.T) {
	reach := 0
	for _, a := range []api.Action{
		{Kind: api.ActionSwitch},
		{Kind: api.ActionSwitch, OrigMasterIsNewSlave: true},
		{Kind: api.ActionSwitch, SkipChangeMaster: true, SkipDisableReadOnly: true, SSHReachable: &reach, RunningUpdatesLimit: 5, RunningSecondsLimit: 3},
		{Kind: api.ActionFailover},
	} {
		f, err := manualFlagsOfAction(a)
		if err != nil {
			t.Fatal(err)
		}
		detail := map[string]string{"by": "operator"}
		f.record(detail)
		got := manualFlagsOf([]fsm.JournalEntry{{Phase: PhaseLock, Status: fsm.PhaseDone, Detail: detail}, {Phase: failover.SwitchCheck}})
		if got != f {
			t.Errorf("%+v: journaled %v, read back %+v, want %+v", a, detail, got, f)
		}
	}
	f, _ := manualFlagsOfAction(api.Action{Kind: api.ActionSwitch, SkipChangeMaster: true, SSHReachable: &reach, RunningSecondsLimit: 3})
	if f.sw.OrigMasterSSH != failover.SSHUnreachable || f.sw.RunningSecondsLimit != 3*time.Second || !f.sw.SkipChangeMaster {
		t.Errorf("flags of the action: %+v", f)
	}
	detail := map[string]string{}
	check, _ := manualFlagsOfAction(api.Action{Kind: api.ActionSwitch, CheckOnly: true})
	check.record(detail)
	if len(detail) != 0 {
		t.Errorf("check_only journaled as %v", detail)
	}
	if got := manualFlagsOf([]fsm.JournalEntry{{Phase: PhaseLock, Detail: map[string]string{"by": "operator", origIsNewSlaveKey: "1"}}}); got != (manualFlags{origIsNewSlave: true}) {
		t.Errorf("a journal written before the other flags reads as %+v", got)
	}
	bad := 5
	if _, err := manualFlagsOfAction(api.Action{Kind: api.ActionSwitch, SSHReachable: &bad}); err == nil {
		t.Error("ssh_reachable=5 accepted")
	}
}
