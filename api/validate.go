package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// ActionKinds lists every action kind the API accepts.
var ActionKinds = []string{
	ActionSwitch, ActionFailover, ActionAck, ActionPause, ActionResume,
	ActionMemberAdd, ActionMemberRemove, ActionServerAdd, ActionServerRemove, ActionRejoin,
}

// actionRule says which fields an action kind needs and which it accepts
// (JSON names; "kind" and "reason" are always accepted).
type actionRule struct {
	required []string
	optional []string
}

var actionRules = map[string]actionRule{
	ActionSwitch: {required: []string{"app"}, optional: []string{"new_master", "orig_master_is_new_slave",
		"check_only", "skip_change_master", "skip_disable_read_only", "ssh_reachable", "running_updates_limit", "running_seconds_limit"}},
	ActionFailover:     {required: []string{"app"}, optional: []string{"dead_master", "new_master", "ignore_last_failover", "ignore_binlog_server_error"}},
	ActionAck:          {required: []string{"app"}},
	ActionPause:        {required: []string{"app"}},
	ActionResume:       {required: []string{"app"}},
	ActionRejoin:       {required: []string{"app", "host"}},
	ActionServerAdd:    {required: []string{"app", "server"}},
	ActionServerRemove: {required: []string{"app", "host"}},
	ActionMemberAdd:    {required: []string{"member_id", "member_addr"}, optional: []string{"force"}},
	ActionMemberRemove: {required: []string{"member_id"}, optional: []string{"force"}},
}

// DecodeAction parses a request body into an Action. Errors are *Error
// with status 400 that name the byte offset or the field at fault.
func DecodeAction(body []byte) (*Action, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, Errorf(http.StatusBadRequest, "", "empty request body: expected a JSON action object such as {\"kind\":\"ack\",\"app\":\"app1\"}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var a Action
	if err := dec.Decode(&a); err != nil {
		return nil, jsonError(err, len(body))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(http.StatusBadRequest, "", "malformed JSON: unexpected data after the action object at byte offset %d", dec.InputOffset())
	}
	return &a, nil
}

func jsonError(err error, n int) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return Errorf(http.StatusBadRequest, "", "malformed JSON at byte offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return Errorf(http.StatusBadRequest, typ.Field, "field %q: cannot use a JSON %s as %s (byte offset %d)", typ.Field, typ.Value, typ.Type, typ.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "", "malformed JSON: unexpected end of input at byte offset %d", n)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return Errorf(http.StatusBadRequest, name, "unknown field %q", name)
	}
	return Errorf(http.StatusBadRequest, "", "malformed JSON: %v", err)
}

// setFields lists the JSON names of a's non-zero fields, kind excepted.
func setFields(a *Action) []string {
	var f []string
	add := func(set bool, name string) {
		if set {
			f = append(f, name)
		}
	}
	add(a.App != "", "app")
	add(a.NewMaster != "", "new_master")
	add(a.DeadMaster != "", "dead_master")
	add(a.Host != "", "host")
	add(a.OrigMasterIsNewSlave, "orig_master_is_new_slave")
	add(a.IgnoreLastFailover, "ignore_last_failover")
	add(a.IgnoreBinlogServerError, "ignore_binlog_server_error")
	add(a.CheckOnly, "check_only")
	add(a.SkipChangeMaster, "skip_change_master")
	add(a.SkipDisableReadOnly, "skip_disable_read_only")
	add(a.SSHReachable != nil, "ssh_reachable")
	add(a.RunningUpdatesLimit != 0, "running_updates_limit")
	add(a.RunningSecondsLimit != 0, "running_seconds_limit")
	add(a.MemberID != "", "member_id")
	add(a.MemberAddr != "", "member_addr")
	add(a.Server != nil, "server")
	add(a.Force, "force")
	add(a.Reason != "", "reason")
	return f
}

// ValidateAction checks a against the cluster state st, fully, before
// anything runs: a known kind, the fields that kind needs and no others,
// an existing app, servers that belong to it, members that exist (or not).
// It returns an *Error: 400 for a bad request, 404 for an unknown app or
// member, 409 for something that already exists.
func ValidateAction(a *Action, st *Status) error {
	rule, ok := actionRules[a.Kind]
	if !ok {
		if a.Kind == "" {
			return Errorf(http.StatusBadRequest, "kind", "missing action kind (one of %s)", strings.Join(ActionKinds, ", "))
		}
		return Errorf(http.StatusBadRequest, "kind", "unknown action kind %q (one of %s)", a.Kind, strings.Join(ActionKinds, ", "))
	}
	set := setFields(a)
	for _, f := range rule.required {
		if !slices.Contains(set, f) {
			return Errorf(http.StatusBadRequest, f, "%s needs %s", a.Kind, f)
		}
	}
	for _, f := range set {
		if f != "reason" && !slices.Contains(rule.required, f) && !slices.Contains(rule.optional, f) {
			return Errorf(http.StatusBadRequest, f, "%s does not take %s", a.Kind, f)
		}
	}

	var app *AppStatus
	if a.App != "" {
		if app = st.App(a.App); app == nil {
			return unknownApp(a.App, st)
		}
	}
	switch a.Kind {
	case ActionSwitch:
		if v := a.SSHReachable; v != nil && (*v < 0 || *v > 2) {
			return Errorf(http.StatusBadRequest, "ssh_reachable", "ssh_reachable %d: MHA's --ssh_reachable is 0 (not reachable over SSH), 1 (reachable) or 2 (unknown)", *v)
		}
		if a.RunningUpdatesLimit < 0 {
			return Errorf(http.StatusBadRequest, "running_updates_limit", "running_updates_limit %d: seconds, at least 1", a.RunningUpdatesLimit)
		}
		if a.RunningSecondsLimit < 0 {
			return Errorf(http.StatusBadRequest, "running_seconds_limit", "running_seconds_limit %d: seconds, at least 1", a.RunningSecondsLimit)
		}
		// Without new_master the switch elects one by MHA's rules.
		if a.NewMaster == "" {
			break
		}
		s, err := serverOf(app, a.NewMaster, "new_master")
		if err != nil {
			return err
		}
		if app.isMaster(s) {
			return Errorf(http.StatusBadRequest, "new_master", "%s is already the master of %s", a.NewMaster, app.Name)
		}
	case ActionFailover:
		var dead *ServerStatus
		if a.DeadMaster != "" {
			s, err := serverOf(app, a.DeadMaster, "dead_master")
			if err != nil {
				return err
			}
			dead = s
		} else {
			dead = app.Server(app.Master)
		}
		if a.NewMaster != "" {
			s, err := serverOf(app, a.NewMaster, "new_master")
			if err != nil {
				return err
			}
			if s == dead {
				return Errorf(http.StatusBadRequest, "new_master", "new_master %s is the dead master", a.NewMaster)
			}
		}
	case ActionRejoin:
		if _, err := serverOf(app, a.Host, "host"); err != nil {
			return err
		}
	case ActionServerRemove:
		s, err := serverOf(app, a.Host, "host")
		if err != nil {
			return err
		}
		if app.isMaster(s) {
			return Errorf(http.StatusBadRequest, "host", "%s is the master of %s: switch first, then remove it", a.Host, app.Name)
		}
	case ActionServerAdd:
		return validateServerSpec(app, a.Server)
	case ActionMemberAdd:
		if st.Manager(a.MemberID) != nil {
			return Errorf(http.StatusConflict, "member_id", "manager %q is already a member", a.MemberID)
		}
	case ActionMemberRemove:
		if st.Manager(a.MemberID) == nil {
			return Errorf(http.StatusNotFound, "member_id", "no manager %q (members: %s)", a.MemberID, strings.Join(managerIDs(st), ", "))
		}
	}
	return nil
}

func validateServerSpec(app *AppStatus, s *ServerSpec) error {
	switch {
	case s.Name == "":
		return Errorf(http.StatusBadRequest, "server.name", "server-add needs server.name")
	case s.Hostname == "":
		return Errorf(http.StatusBadRequest, "server.hostname", "server-add needs server.hostname")
	case s.Port < 1 || s.Port > 65535:
		return Errorf(http.StatusBadRequest, "server.port", "server.port %d is not a TCP port (1-65535)", s.Port)
	case s.CandidateMaster && s.NoMaster:
		return Errorf(http.StatusBadRequest, "server.no_master", "a server cannot be both candidate_master and no_master")
	}
	if app.Server(s.Name) != nil {
		return Errorf(http.StatusConflict, "server.name", "%s already has a server named %s", app.Name, s.Name)
	}
	addr := fmt.Sprintf("%s:%d", s.Hostname, s.Port)
	if other := app.Server(addr); other != nil {
		return Errorf(http.StatusConflict, "server", "%s already has %s as %s", app.Name, addr, other.Name)
	}
	return nil
}

// serverOf finds ref (a server name or host:port) in app or says which
// servers exist.
func serverOf(app *AppStatus, ref, field string) (*ServerStatus, error) {
	if s := app.Server(ref); s != nil {
		return s, nil
	}
	var names []string
	for _, s := range app.Servers {
		names = append(names, s.Name+" ("+s.Addr+")")
	}
	return nil, Errorf(http.StatusBadRequest, field, "%s has no server %q (servers: %s)", app.Name, ref, strings.Join(names, ", "))
}

func unknownApp(name string, st *Status) *Error {
	var names []string
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	return Errorf(http.StatusNotFound, "app", "unknown application %q (known: %s)", name, strings.Join(names, ", "))
}

func managerIDs(st *Status) []string {
	var ids []string
	for _, m := range st.Managers {
		ids = append(ids, m.ID)
	}
	return ids
}

// App returns the application called name, or nil.
func (s *Status) App(name string) *AppStatus {
	for i := range s.Apps {
		if s.Apps[i].Name == name {
			return &s.Apps[i]
		}
	}
	return nil
}

// Manager returns the manager with that ID, or nil.
func (s *Status) Manager(id string) *Manager {
	for i := range s.Managers {
		if s.Managers[i].ID == id {
			return &s.Managers[i]
		}
	}
	return nil
}

// Server returns the server whose name or host:port is ref, or nil.
func (a *AppStatus) Server(ref string) *ServerStatus {
	if ref == "" {
		return nil
	}
	for i := range a.Servers {
		if a.Servers[i].Name == ref || a.Servers[i].Addr == ref {
			return &a.Servers[i]
		}
	}
	return nil
}

func (a *AppStatus) isMaster(s *ServerStatus) bool {
	return s != nil && (s.Name == a.Master || s.Addr == a.Master)
}
