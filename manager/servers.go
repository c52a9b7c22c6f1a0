package manager

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/fsm"
)

// effectiveApp is the application as the cluster currently knows it: the
// servers of the replicated state (which `mhactl server add/remove` change
// and which survive restarts), each with its settings and credentials from
// this node's configuration file when the file has it, else built from the
// file's [server default] (config.App.ServerFromDefaults). Configured
// servers the cluster removed are left out.
func (m *Manager) effectiveApp(name string, st *fsm.AppState) *config.App {
	app := m.apps[name]
	if app == nil || st == nil || len(st.Servers) == 0 {
		return app
	}
	byName := map[string]*config.Server{}
	for _, s := range app.Servers {
		byName[s.Name] = s
	}
	same := len(st.Servers) == len(app.Servers)
	for _, s := range st.Servers {
		if byName[s.Name] == nil {
			same = false
		}
	}
	if same {
		return app
	}
	cp := *app
	cp.Servers = nil
	for _, s := range st.Servers {
		if cs := byName[s.Name]; cs != nil {
			cp.Servers = append(cp.Servers, cs)
			continue
		}
		cs, err := m.runtimeServer(app, s)
		if err != nil {
			m.warnOnce(name+"/"+s.Name, "server added at run time cannot be used", "app", name, "server", s.Name,
				"error", fmt.Sprintf("%v: fix [server default] or remove it with `mhactl server remove`", err))
			continue
		}
		cp.Servers = append(cp.Servers, cs)
	}
	return &cp
}

// runtimeServer builds (once per application and server spec: the
// evaluator asks every 250 ms, and building resolves the hostname) a
// server added at run time from the file's [server default].
func (m *Manager) runtimeServer(app *config.App, s fsm.Server) (*config.Server, error) {
	key := fmt.Sprintf("%s\x00%+v", app.Name, s)
	m.mu.Lock()
	cs := m.runtime[key]
	m.mu.Unlock()
	if cs != nil {
		return cs, nil
	}
	cs, err := app.ServerFromDefaults(s.Name, runtimeSettings(s))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.runtime[key] = cs
	m.mu.Unlock()
	return cs, nil
}

// runtimeSettings are the settings of a server added with `mhactl server
// add`, as a configuration block would hold them.
func runtimeSettings(s fsm.Server) map[string]string {
	out := map[string]string{"hostname": s.Hostname, "port": strconv.Itoa(s.Port)}
	if s.IP != "" {
		out["ip"] = s.IP
	}
	if s.Datacenter != "" {
		out["datacenter"] = s.Datacenter
	}
	if s.CandidateMaster {
		out["candidate_master"] = "1"
	}
	if s.NoMaster {
		out["no_master"] = "1"
	}
	if s.BinlogDir != "" {
		out["master_binlog_dir"] = s.BinlogDir
	}
	return out
}

// warnOnce logs a warning the first time key is seen.
func (m *Manager) warnOnce(key, msg string, args ...any) {
	m.mu.Lock()
	seen := m.warned[key]
	m.warned[key] = true
	m.mu.Unlock()
	if !seen {
		m.log.Warn(msg, append(args, "epoch", 0)...)
	}
}

// fsmServer is the replicated identity of a configured server: what every
// manager shares about it (never credentials or per-node settings).
func fsmServer(s *config.Server) fsm.Server {
	return fsm.Server{
		Name:            s.Name,
		Hostname:        s.Hostname,
		IP:              s.IP,
		Port:            s.Port,
		Datacenter:      s.Datacenter,
		CandidateMaster: s.CandidateMaster,
		NoMaster:        s.NoMaster,
		BinlogDir:       s.MasterBinlogDir,
	}
}

// registerCmd is the RegisterApp command of a configured application: its
// servers as fsmServer and the file's server names (ConfigNames).
func registerCmd(app *config.App, at time.Time) fsm.RegisterAppCmd {
	c := fsm.RegisterAppCmd{App: app.Name, LastFailoverMinute: app.LastFailoverMinute, At: at}
	for _, s := range app.Servers {
		c.Servers = append(c.Servers, fsmServer(s))
		c.ConfigNames = append(c.ConfigNames, s.Name)
	}
	return c
}
