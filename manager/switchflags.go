package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/failover"
	"github.com/mharaft/mharaft/fsm"
)

// Journal detail keys of an operator's switch flags, in the lock phase's
// entry next to origIsNewSlaveKey: a leader that resumes the switch reads
// them back (manualFlagsOf), so it honours them too.
const (
	skipChangeMasterKey    = "skip_change_master"
	skipDisableReadOnlyKey = "skip_disable_read_only"
	sshReachableKey        = "ssh_reachable"         // MHA's 0 or 1; absent: unknown
	runningUpdatesLimitKey = "running_updates_limit" // seconds
	runningSecondsLimitKey = "running_seconds_limit" // seconds
	ignoreBinlogServerKey  = "ignore_binlog_server_error"
)

// manualFlags are an operator's flags for a manual pipeline: given to it,
// and journaled (record) so that a resume gives them again. --check_only
// is never journaled: a check takes no lock (checkOnlySwitch).
type manualFlags struct {
	origIsNewSlave bool
	sw             failover.SwitchOptions
	// ignoreBinlogServerError: a failover's --ignore-binlog-server-error.
	ignoreBinlogServerError bool
}

// manualFlagsOfAction reads the flags of a switch or failover action.
func manualFlagsOfAction(a api.Action) (manualFlags, error) {
	f := manualFlags{origIsNewSlave: a.OrigMasterIsNewSlave, ignoreBinlogServerError: a.IgnoreBinlogServerError}
	if a.Kind != api.ActionSwitch {
		return f, nil
	}
	f.sw = failover.SwitchOptions{CheckOnly: a.CheckOnly, SkipChangeMaster: a.SkipChangeMaster, SkipDisableReadOnly: a.SkipDisableReadOnly,
		RunningUpdatesLimit: time.Duration(a.RunningUpdatesLimit) * time.Second,
		RunningSecondsLimit: time.Duration(a.RunningSecondsLimit) * time.Second}
	if a.SSHReachable != nil {
		reach, err := failover.ParseSSHReachable(*a.SSHReachable)
		if err != nil {
			return f, &api.Error{Status: 400, Field: "ssh_reachable", Msg: err.Error()}
		}
		f.sw.OrigMasterSSH = reach
	}
	return f, nil
}

// record writes the flags into the lock phase's journal detail.
func (f manualFlags) record(detail map[string]string) {
	if f.origIsNewSlave {
		detail[origIsNewSlaveKey] = "1"
	}
	if f.ignoreBinlogServerError {
		detail[ignoreBinlogServerKey] = "1"
	}
	if f.sw.SkipChangeMaster {
		detail[skipChangeMasterKey] = "1"
	}
	if f.sw.SkipDisableReadOnly {
		detail[skipDisableReadOnlyKey] = "1"
	}
	if f.sw.OrigMasterSSH != failover.SSHUnknown {
		detail[sshReachableKey] = strconv.Itoa(f.sw.OrigMasterSSH.MHA())
	}
	if f.sw.RunningUpdatesLimit > 0 {
		detail[runningUpdatesLimitKey] = strconv.Itoa(int(f.sw.RunningUpdatesLimit / time.Second))
	}
	if f.sw.RunningSecondsLimit > 0 {
		detail[runningSecondsLimitKey] = strconv.Itoa(int(f.sw.RunningSecondsLimit / time.Second))
	}
}

// manualFlagsOf reads back the flags record journaled in the lock phase
// of journal (one run's journal: a new lock starts an empty one).
func manualFlagsOf(journal []fsm.JournalEntry) manualFlags {
	var f manualFlags
	for _, e := range journal {
		if e.Phase != PhaseLock {
			continue
		}
		d := e.Detail
		f.origIsNewSlave = f.origIsNewSlave || d[origIsNewSlaveKey] == "1"
		f.ignoreBinlogServerError = f.ignoreBinlogServerError || d[ignoreBinlogServerKey] == "1"
		f.sw.SkipChangeMaster = f.sw.SkipChangeMaster || d[skipChangeMasterKey] == "1"
		f.sw.SkipDisableReadOnly = f.sw.SkipDisableReadOnly || d[skipDisableReadOnlyKey] == "1"
		if v, err := strconv.Atoi(d[sshReachableKey]); err == nil {
			if reach, err := failover.ParseSSHReachable(v); err == nil {
				f.sw.OrigMasterSSH = reach
			}
		}
		if v, err := strconv.Atoi(d[runningUpdatesLimitKey]); err == nil && v > 0 {
			f.sw.RunningUpdatesLimit = time.Duration(v) * time.Second
		}
		if v, err := strconv.Atoi(d[runningSecondsLimitKey]); err == nil && v > 0 {
			f.sw.RunningSecondsLimit = time.Duration(v) * time.Second
		}
	}
	return f
}

// checkOnlySwitch is a switch with check_only (MHA's --check_only): the
// switch's phase 1 over connections that only read. It takes no lock,
// journals nothing, changes nothing and leaves no history entry, so it
// needs no leadership; it is refused while a pipeline holds the lock (the
// servers are then mid-change). newMaster is a server name or "".
func (m *Manager) checkOnlySwitch(ctx context.Context, a api.Action, app *config.App, st *fsm.AppState, newMaster string, f manualFlags) (*api.ActionResult, error) {
	if st.Lock != nil {
		return nil, fmt.Errorf("switch --check_only of %s: a %s holds the lock at epoch %d: %w", a.App, st.Lock.Kind, st.Lock.Epoch, fsm.ErrLockHeld)
	}
	app = withFormerMastersIgnoreFail(app, st, m.fsm.History(a.App), st.Master)
	log := m.log.With("app", a.App, "check_only", true)
	rep, err := failover.Switch(ctx, failover.Options{App: app, Yes: true, NewMaster: newMaster, OrigMasterIsNewSlave: f.origIsNewSlave,
		Switch: f.sw, Out: &logWriter{log: log}})
	res := &api.ActionResult{OK: err == nil}
	if rep != nil {
		res.Report, _ = json.Marshal(rep)
		res.Message = rep.Subject
	}
	if err != nil {
		res.Message = err.Error()
	}
	return res, nil
}
