package topology

import "time"

// Report is a Topology and its problems in a form fit for JSON output: no
// passwords, errors as text.
type Report struct {
	App      string         `json:"app"`
	Master   string         `json:"master,omitempty"`
	Healthy  bool           `json:"healthy"`
	At       time.Time      `json:"at"`
	Servers  []ServerReport `json:"servers"`
	Problems []Problem      `json:"problems"`
}

// ServerReport is one server of a Report.
type ServerReport struct {
	Name          string   `json:"name"`
	Addr          string   `json:"addr"`
	Role          string   `json:"role"`
	Reachable     bool     `json:"reachable"`
	Error         string   `json:"error,omitempty"`
	Version       string   `json:"version,omitempty"`
	ServerID      uint32   `json:"server_id,omitempty"`
	ReadOnly      bool     `json:"read_only"`
	SuperReadOnly bool     `json:"super_read_only,omitempty"`
	LogBin        bool     `json:"log_bin"`
	Binlog        string   `json:"binlog,omitempty"` // file:pos of SHOW MASTER STATUS
	GTID          string   `json:"gtid,omitempty"`
	ReadPos       string   `json:"read_pos,omitempty"`
	ExecPos       string   `json:"exec_pos,omitempty"`
	IORunning     string   `json:"io_running,omitempty"`
	SQLRunning    *bool    `json:"sql_running,omitempty"`
	LagSeconds    *int64   `json:"lag_seconds,omitempty"`
	UsingGTID     string   `json:"using_gtid,omitempty"`
	Latest        bool     `json:"latest,omitempty"`
	Oldest        bool     `json:"oldest,omitempty"`
	LastErrors    []string `json:"last_errors,omitempty"`
	// SemiSync is the server's semi-sync state; nil when it has none.
	SemiSync *SemiSyncReport `json:"semi_sync,omitempty"`
}

// SemiSyncReport is a server's semi-synchronous replication state.
type SemiSyncReport struct {
	MasterEnabled  bool   `json:"master_enabled"`
	MasterActive   bool   `json:"master_active"`
	ReplicaEnabled bool   `json:"replica_enabled"`
	ReplicaActive  bool   `json:"replica_active"`
	WaitPoint      string `json:"wait_point,omitempty"`
	TimeoutMS      int64  `json:"timeout_ms"`
	Clients        int    `json:"clients"`
	NoTx           uint64 `json:"no_tx"`
}

// NewReport builds the Report of t with problems ps.
func NewReport(t *Topology, ps []Problem) Report {
	r := Report{At: t.At, Healthy: !HasErrors(ps), Problems: ps}
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	if t.App != nil {
		r.App = t.App.Name
	}
	if t.Master != nil {
		r.Master = t.Master.Server.Name
	}
	latest, oldest := map[*ServerState]bool{}, map[*ServerState]bool{}
	for _, s := range t.Latest() {
		latest[s] = true
	}
	for _, s := range t.Oldest() {
		oldest[s] = true
	}
	for _, s := range t.Servers {
		sr := ServerReport{Name: s.Server.Name, Addr: s.Server.String(), Role: Role(t, s), Reachable: s.Reachable,
			Latest: latest[s], Oldest: oldest[s]}
		if s.Err != nil {
			sr.Error = s.Err.Error()
		}
		if s.Reachable {
			sr.Version = s.Version.String()
			sr.ServerID = s.ServerID
			sr.ReadOnly, sr.SuperReadOnly, sr.LogBin = s.ReadOnly, s.SuperReadOnly, s.LogBin
			if s.MasterStatus != nil {
				sr.Binlog = s.MasterStatus.String()
			}
			sr.GTID = gtidOf(s)
			if ss := s.SemiSync; ss.Known {
				sr.SemiSync = &SemiSyncReport{MasterEnabled: ss.MasterEnabled, MasterActive: ss.MasterActive,
					ReplicaEnabled: ss.ReplicaEnabled, ReplicaActive: ss.ReplicaActive, WaitPoint: ss.WaitPoint,
					TimeoutMS: ss.Timeout.Milliseconds(), Clients: ss.Clients, NoTx: ss.NoTx}
			}
		}
		if rs := s.Replica; rs != nil {
			sr.ReadPos, sr.ExecPos = rs.ReadPos().String(), rs.ExecPos().String()
			sr.IORunning = rs.IORunning
			sql := rs.SQLRunning
			sr.SQLRunning = &sql
			sr.LagSeconds = rs.SecondsBehindMaster
			sr.UsingGTID = rs.UsingGTID
			for _, e := range []string{rs.LastIOError, rs.LastSQLError} {
				if e != "" {
					sr.LastErrors = append(sr.LastErrors, e)
				}
			}
		}
		r.Servers = append(r.Servers, sr)
	}
	return r
}
