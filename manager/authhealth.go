package manager

// Login health. A server that refuses a manager's login (a rotated
// password, a dropped account or grant, 1130 host not privileged, a locked
// account: dialect.Classify's KindAuthError) is alive, and MHA's rule
// holds: it is never failed over for that. But the manager is blind to it
// (no positions, no replication state, no recovery through it), so it
// says so:
//
//   - the status of every manager shows the server with health auth-error
//     and the MySQL error (from the leader's discovery, stored in the
//     replicated topology summary as ErrorKind, and from any manager's
//     fresh observation of the master);
//   - the manager logs one WARN line when a server starts refusing its
//     login and one INFO line when it accepts it again, per source
//     (discovery on the leader, the master's probe on every manager),
//     deduplicated by state like noteVerdict;
//   - mhactl check-status does not answer PING_OK while the master
//     refuses a manager's login.
//
// The error text is the driver's: it names the user, never the password.

import (
	"sort"
	"strings"
	"time"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/detector"
	"github.com/mharaft/mharaft/dialect"
	"github.com/mharaft/mharaft/fsm"
	"github.com/mharaft/mharaft/topology"
)

// Log messages of a refused login (the tests match them).
const (
	msgLoginRefused  = "server refuses the manager's login"
	msgLoginAccepted = "server accepts the manager's login again"
	hintLoginRefused = "the server is alive and is not failed over for this, but this manager cannot watch or use it: " +
		"fix the password or grants of this user on the server, or user=/password= in the manager's configuration"
)

// Sources of a login result.
const (
	loginByDiscovery = "discovery" // the leader's topology discovery
	loginByProbe     = "probe"     // this manager's probe of the master
)

// loginState is what one login attempt says about the login itself.
type loginState int

const (
	loginUnknown  loginState = iota // the server did not answer: nothing is known about the login
	loginAccepted                   // we are logged in
	loginRefused                    // the server refused our login
)

// loginStateOf classifies the error of a connect (nil: connected).
func loginStateOf(kind string) loginState {
	switch kind {
	case dialect.KindOK:
		return loginAccepted
	case dialect.KindAuthError:
		return loginRefused
	}
	return loginUnknown
}

// noteDiscoveryLogins sets the ErrorKind of each server of sum (the
// summarize of topo: one entry per topo.Servers, in order) and logs the
// start and end of refused logins. It runs on the leader after each
// discovery.
func (m *Manager) noteDiscoveryLogins(app string, topo *topology.Topology, sum *fsm.Topology, epoch uint64) {
	for i, s := range topo.Servers {
		kind := dialect.KindOK
		if s.Err != nil {
			kind, _ = dialect.Classify(s.Err)
			if i < len(sum.Servers) {
				sum.Servers[i].ErrorKind = kind
			}
		}
		detail := ""
		if s.Err != nil {
			detail = s.Err.Error()
		}
		m.noteLogin(app, s.Server.Name, s.Server.User, loginByDiscovery, loginStateOf(kind), detail, epoch)
	}
}

// noteProbeLogin logs the start and end of a refused login seen by this
// manager's probe of the master (every manager, leader or not).
func (m *Manager) noteProbeLogin(o detector.Observation) {
	user := ""
	if st, ok := m.fsm.App(o.App); ok {
		if app := m.effectiveApp(o.App, &st); app != nil {
			if s := configServer(app, &st, o.Server); s != nil {
				user = s.User
			}
		}
	}
	m.noteLogin(o.App, o.Server, user, loginByProbe, loginStateOf(o.Kind), o.Detail, 0)
}

// noteLogin logs a change of a server's login state from one source: WARN
// when it starts refusing, INFO when it accepts again. An unknown state
// (the server did not answer) changes nothing.
func (m *Manager) noteLogin(app, server, user, source string, state loginState, detail string, epoch uint64) {
	if state == loginUnknown {
		return
	}
	key := "login-refused\x00" + source + "\x00" + app + "\x00" + server
	m.mu.Lock()
	was := m.warned[key]
	if state == loginRefused {
		m.warned[key] = true
	} else {
		delete(m.warned, key)
	}
	m.mu.Unlock()
	switch {
	case state == loginRefused && !was:
		m.log.Warn(msgLoginRefused, "app", app, "server", server, "user", user, "source", source,
			"error", detail, "hint", hintLoginRefused, "epoch", epoch)
	case state == loginAccepted && was:
		m.log.Info(msgLoginAccepted, "app", app, "server", server, "user", user, "source", source, "epoch", epoch)
	}
}

// serverHealth is the Health and HealthDetail of the server at addr: t is
// the leader's last discovery of it (discovered false: none yet), and the
// fresh observations of st (each manager's probe of the master) add the
// managers whose login it refuses.
func serverHealth(st *fsm.AppState, app *config.App, addr string, t fsm.ServerStatus, discovered bool, now time.Time) (health, detail string) {
	health = api.HealthUnknown
	var details []string
	if discovered {
		switch {
		case t.ErrorKind == dialect.KindAuthError:
			health = api.HealthAuthError
			details = append(details, t.Error)
		case t.Reachable:
			health = api.HealthOK
		default:
			health = api.HealthUnreachable
			details = append(details, t.Error)
		}
	}
	window := 2 * time.Minute
	if app != nil {
		window = 2 * detector.DefaultWindow(app)
	}
	var refusedBy []string
	for mgr, byServer := range st.Observations {
		o, ok := byServer[addr]
		if !ok || o.Kind != dialect.KindAuthError {
			continue
		}
		at := o.LoggedAt
		if at.IsZero() {
			at = o.At
		}
		if now.Sub(at) > window {
			continue // a manager that stopped publishing: its view is old
		}
		refusedBy = append(refusedBy, "manager "+mgr+": "+o.Detail)
	}
	if len(refusedBy) > 0 {
		sort.Strings(refusedBy)
		if health != api.HealthAuthError {
			details = nil // the discovery's own view (ok or unreachable) is not why
		}
		health = api.HealthAuthError
		details = append(details, refusedBy...)
	}
	if health == api.HealthOK {
		return health, ""
	}
	var out []string
	for _, d := range details {
		if d != "" {
			out = append(out, d)
		}
	}
	return health, strings.Join(out, "; ")
}
