package api

import (
	"context"
	"encoding/json"
	"time"
)

// Backend is what the HTTP API needs from the manager daemon. The daemon
// (package manager) implements it; the API never imports it.
type Backend interface {
	// Status is this manager's view of the cluster and every application.
	Status(ctx context.Context) (*Status, error)
	// History lists finished failovers and switches, oldest first; app ""
	// means every application.
	History(ctx context.Context, app string) ([]HistoryEntry, error)
	// Do runs an action. Only the Raft leader runs actions: the API forwards
	// a request that reaches a follower to LeaderAPIAddr.
	Do(ctx context.Context, a Action) (*ActionResult, error)
	IsLeader() bool
	LeaderAPIAddr() string // "" while there is no leader
}

// MembershipReporter is an optional interface of a Backend whose manager
// can tell that it is not (or no longer) a member of the Raft group. While
// NotMember returns an error, GET /healthz answers 503 with ok=false,
// removed=true and that error (which says how to bring the node back), and
// every other route but /metrics answers 503 with it: a removed node must
// not serve its stale status as if it were a member, nor take actions.
type MembershipReporter interface {
	NotMember() error
}

// Status is the answer of GET /v1/status.
type Status struct {
	Node     string      `json:"node"`
	Leader   string      `json:"leader"`
	Term     uint64      `json:"term"`
	Managers []Manager   `json:"managers"`
	Apps     []AppStatus `json:"apps"`
}

// Manager is one mhanode as the Raft configuration and gossip see it.
type Manager struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	APIAddr    string `json:"api_addr"`
	Datacenter string `json:"datacenter,omitempty"`
	Role       string `json:"role"` // leader, follower, candidate, unknown
	Voter      bool   `json:"voter"`
	Alive      bool   `json:"alive"`
	// LastContact is how long ago this manager last heard from the Raft
	// leader. Only the answering manager knows it of itself, and only while
	// it is a follower or candidate: it is empty on the leader's own row
	// and on every other row.
	LastContact string `json:"last_contact,omitempty"`
}

// AppStatus is one application (replication group).
type AppStatus struct {
	Name         string         `json:"name"`
	Master       string         `json:"master"`
	Verdict      string         `json:"verdict"`
	Paused       bool           `json:"paused"`
	Servers      []ServerStatus `json:"servers"`
	Lock         *Lock          `json:"lock,omitempty"`
	Journal      []JournalEntry `json:"journal,omitempty"`
	Unfinished   bool           `json:"unfinished"` // a journal without its final phase
	LastFailover *time.Time     `json:"last_failover,omitempty"`
	Acked        bool           `json:"acked"`
	// AutoRetry is set while refused automatic failovers are being retried
	// (or automatic failover is halted after too many refusals).
	AutoRetry *AutoRetry `json:"auto_retry,omitempty"`
}

// AutoRetry is the retry state of refused automatic failovers.
type AutoRetry struct {
	Refusals    int       `json:"refusals"`
	LastReason  string    `json:"last_reason,omitempty"`
	NextAttempt time.Time `json:"next_attempt"`
	Halted      bool      `json:"halted"` // automatic failover halted until `mhactl ack`
	HaltReason  string    `json:"halt_reason,omitempty"`
}

// ServerStatus is one MySQL server of an application: what the leader's
// last discovery saw of it, with its age.
//
// Role and ReplicatingFrom are always the tree the managers currently
// believe: when the last discovery started before the master last changed
// (a failover or switch finished since), they come from that change (the
// new master is master, its plan's replicas replicate from it, a failed
// master is dead) and the row is Stale; the other fields stay what that
// discovery saw, as of ObservedAt, except the replication fields (threads,
// lag, positions, GTID), which belonged to the old tree and are left empty.
type ServerStatus struct {
	Name            string `json:"name"`
	Addr            string `json:"addr"`
	Role            string `json:"role"` // master, replica, dead, unknown
	Datacenter      string `json:"datacenter,omitempty"`
	Reachable       bool   `json:"reachable"`
	ReadOnly        bool   `json:"read_only"`
	ReplicatingFrom string `json:"replicating_from,omitempty"`
	IOThread        string `json:"io_thread,omitempty"`
	SQLThread       string `json:"sql_thread,omitempty"`
	LagSeconds      *int64 `json:"lag_seconds,omitempty"`
	BinlogPos       string `json:"binlog_pos,omitempty"` // SHOW MASTER STATUS file:pos
	ReadPos         string `json:"read_pos,omitempty"`   // Master_Log_File:Read_Master_Log_Pos
	ExecPos         string `json:"exec_pos,omitempty"`   // Relay_Master_Log_File:Exec_Master_Log_Pos
	GTID            string `json:"gtid,omitempty"`
	Error           string `json:"error,omitempty"`
	// Health is one word about the server, HealthOK, HealthAuthError,
	// HealthUnreachable or HealthUnknown; "" from a manager older than it.
	Health string `json:"health,omitempty"`
	// HealthDetail says why Health is not ok: for HealthAuthError the
	// MySQL error of the refused login (it names the user, never the
	// password), prefixed with the manager that got it; for HealthStale
	// why the row is stale.
	HealthDetail string `json:"health_detail,omitempty"`
	// ObservedAt is when the leader's discovery that the row shows started
	// (on that leader's clock); absent before the first discovery.
	ObservedAt *time.Time `json:"observed_at,omitempty"`
	// AgeSeconds is how old that discovery was when the status was
	// answered (the answering manager's clock minus ObservedAt, never
	// negative); absent with ObservedAt.
	AgeSeconds *float64 `json:"age_seconds,omitempty"`
	// Stale: the row does not show the server as it is now, because the
	// discovery is older than a few discovery intervals (3 intervals plus
	// the 5 s bound of one discovery: 20 s with the default 5 s interval)
	// or started before the master last changed. Health is then
	// HealthStale (unless a fresh observation says HealthAuthError) and
	// HealthDetail says why.
	Stale bool `json:"stale"`
}

// Roles of a ServerStatus.
const (
	RoleMaster  = "master"
	RoleReplica = "replica"
	// RoleDead: the failed master of a finished failover that the leader's
	// discovery cannot reach (or has not read since the failover).
	RoleDead    = "dead"
	RoleUnknown = "unknown"
)

// Health of a ServerStatus.
const (
	HealthOK          = "ok"          // the leader's last discovery read the server
	HealthAuthError   = "auth-error"  // the server is up but refuses a manager's login (1044, 1045, 1130, 3118, 4151): fix the user/password or grants
	HealthUnreachable = "unreachable" // the leader's last discovery could not connect
	HealthUnknown     = "unknown"     // not discovered yet
	HealthStale       = "stale"       // ServerStatus.Stale: what the row shows is not the server's current state
)

// Lock is an application's failover lock.
type Lock struct {
	Epoch   uint64    `json:"epoch"`
	Holder  string    `json:"holder"`
	Kind    string    `json:"kind"`
	Started time.Time `json:"started"`
}

// JournalEntry is one phase record of the current or last failover.
type JournalEntry struct {
	Epoch  uint64    `json:"epoch"`
	Phase  string    `json:"phase"`
	Status string    `json:"status"` // started, done, failed
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// HistoryEntry is one finished failover or switch.
type HistoryEntry struct {
	App        string    `json:"app"`
	Kind       string    `json:"kind"` // failover (auto), failover (manual), switch
	Epoch      uint64    `json:"epoch"`
	DeadMaster string    `json:"dead_master,omitempty"`
	OldMaster  string    `json:"old_master,omitempty"`
	NewMaster  string    `json:"new_master"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Result     string    `json:"result"` // success, failed, halted, refused
	Summary    string    `json:"summary,omitempty"`
	// Attempts counts the identical refused attempts this entry stands for
	// (a refused automatic failover retried with backoff is one entry).
	Attempts int `json:"attempts,omitempty"`
}

// Action kinds.
const (
	ActionSwitch       = "switch"
	ActionFailover     = "failover"
	ActionAck          = "ack"
	ActionPause        = "pause"
	ActionResume       = "resume"
	ActionMemberAdd    = "member-add"
	ActionMemberRemove = "member-remove"
	ActionServerAdd    = "server-add"
	ActionServerRemove = "server-remove"
	ActionRejoin       = "rejoin"
)

// Action is a request to change something.
type Action struct {
	Kind                 string `json:"kind"`
	App                  string `json:"app,omitempty"`
	NewMaster            string `json:"new_master,omitempty"`  // switch, failover
	DeadMaster           string `json:"dead_master,omitempty"` // failover
	Host                 string `json:"host,omitempty"`        // rejoin, server-remove
	OrigMasterIsNewSlave bool   `json:"orig_master_is_new_slave,omitempty"`
	IgnoreLastFailover   bool   `json:"ignore_last_failover,omitempty"`
	// IgnoreBinlogServerError (failover): MHA's --ignore_binlog_server_error.
	IgnoreBinlogServerError bool `json:"ignore_binlog_server_error,omitempty"`
	// Switch only: masterha_master_switch --master_state=alive's flags.
	// CheckOnly runs the checks and changes nothing (no lock is taken).
	CheckOnly           bool `json:"check_only,omitempty"`
	SkipChangeMaster    bool `json:"skip_change_master,omitempty"`
	SkipDisableReadOnly bool `json:"skip_disable_read_only,omitempty"`
	// SSHReachable is MHA's --ssh_reachable for the old master: 0 (not
	// reachable over SSH), 1 (reachable) or 2 (unknown, as when absent).
	SSHReachable *int `json:"ssh_reachable,omitempty"`
	// RunningUpdatesLimit and RunningSecondsLimit are MHA's
	// --running_updates_limit and --running_seconds_limit in seconds
	// (absent: running_updates_limit of the configuration, and 10).
	RunningUpdatesLimit int         `json:"running_updates_limit,omitempty"`
	RunningSecondsLimit int         `json:"running_seconds_limit,omitempty"`
	MemberID            string      `json:"member_id,omitempty"`
	MemberAddr          string      `json:"member_addr,omitempty"`
	Server              *ServerSpec `json:"server,omitempty"` // server-add
	// Force skips the safety checks of member-add (something answers at
	// member_addr) and member-remove (at least 3 voters are left).
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ServerSpec describes a server to add to an application (masterha_conf_host).
type ServerSpec struct {
	Name            string `json:"name"`
	Hostname        string `json:"hostname"`
	Port            int    `json:"port"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
	Datacenter      string `json:"datacenter,omitempty"`
}

// ActionResult is the answer to an action.
type ActionResult struct {
	OK      bool            `json:"ok"`
	Message string          `json:"message"`
	Epoch   uint64          `json:"epoch,omitempty"`
	Report  json.RawMessage `json:"report,omitempty"`
}
