package fsm

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"time"
)

// Lock kinds.
const (
	KindAuto   = "auto"   // automatic failover decided by the detector
	KindManual = "manual" // operator's failover of a dead master
	KindSwitch = "switch" // online switch of a live master
	KindRejoin = "rejoin" // operator's rejoin of a repaired server as a replica (no master change, no anti-flapping)
)

// Journal statuses.
const (
	PhaseStarted = "started"
	PhaseDone    = "done"
	PhaseFailed  = "failed"
)

// Results of a finished failover or switch.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
	ResultHalted  = "halted"
	// ResultRefused: the pipeline refused before any acting phase (no
	// server was changed). The lock is released, LastFailover is not
	// renewed (no anti-flapping block), consecutive identical refusals
	// share one history entry (Attempts), and for an automatic lock the
	// AutoRetry policy below applies.
	ResultRefused = "refused"
)

// The retry policy of refused automatic failovers (AutoRetry). After the
// n-th refusal in a window, the next automatic lock is refused with
// ErrRetryBackoff until AutoRetryFirstBackoff*2^(n-1) (at most
// AutoRetryMaxBackoff) after the release; the AutoRetryMaxRefusals-th
// refusal within AutoRetryWindow of the window's first one halts automatic
// failover of the app (ErrAutoHalted) until an Ack.
const (
	AutoRetryFirstBackoff = time.Second
	AutoRetryMaxBackoff   = 60 * time.Second
	AutoRetryMaxRefusals  = 5
	AutoRetryWindow       = 10 * time.Minute
)

// Server is the identity of one database server. It never holds passwords.
type Server struct {
	Name            string `json:"name"`         // config section name: "server1"
	Hostname        string `json:"hostname"`     // hostname=
	IP              string `json:"ip,omitempty"` // ip=, "" means Hostname
	Port            int    `json:"port"`         // MySQL port
	Datacenter      string `json:"datacenter,omitempty"`
	CandidateMaster bool   `json:"candidate_master,omitempty"`
	NoMaster        bool   `json:"no_master,omitempty"`
	BinlogDir       string `json:"binlog_dir,omitempty"` // as seen by discovery (or configured)
}

// Addr is ip:port (hostname:port when IP is empty): the key of a server in
// observations, topology and master fields.
func (s Server) Addr() string {
	host := s.IP
	if host == "" {
		host = s.Hostname
	}
	return net.JoinHostPort(host, strconv.Itoa(s.Port))
}

// ServerStatus is what discovery saw of one server.
type ServerStatus struct {
	Addr            string        `json:"addr"`
	Role            string        `json:"role"` // "master", "replica", "unknown"
	ReplicatingFrom string        `json:"replicating_from,omitempty"`
	MasterFile      string        `json:"master_file,omitempty"` // SHOW MASTER STATUS
	MasterPos       uint64        `json:"master_pos,omitempty"`
	ReadFile        string        `json:"read_file,omitempty"` // Master_Log_File
	ReadPos         uint64        `json:"read_pos,omitempty"`  // Read_Master_Log_Pos
	ExecFile        string        `json:"exec_file,omitempty"` // Relay_Master_Log_File
	ExecPos         uint64        `json:"exec_pos,omitempty"`  // Exec_Master_Log_Pos
	GTIDPos         string        `json:"gtid_pos,omitempty"`
	IORunning       string        `json:"io_running,omitempty"` // "Yes", "No", "Connecting"
	SQLRunning      string        `json:"sql_running,omitempty"`
	Lag             time.Duration `json:"lag,omitempty"` // Seconds_Behind_Master
	LagKnown        bool          `json:"lag_known,omitempty"`
	ReadOnly        bool          `json:"read_only,omitempty"`
	Reachable       bool          `json:"reachable"`
	Error           string        `json:"error,omitempty"`
	// ErrorKind is dialect.Classify's kind of Error ("auth-error": the
	// server refused the leader's login); "" when Error is empty.
	ErrorKind  string    `json:"error_kind,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
}

// Topology is the last discovered topology summary of an application.
type Topology struct {
	Master     string         `json:"master,omitempty"` // addr of the master discovery saw
	Servers    []ServerStatus `json:"servers"`
	ObservedAt time.Time      `json:"observed_at"`
	// Verdict is the leader's latest failure-detection verdict when it
	// stored this summary, so followers can show it too.
	Verdict string `json:"verdict,omitempty"`
}

// Observation is one manager's latest view of one server.
//
// Since and At are the observing manager's clock, for operators. The
// Logged fields are set by Apply from the log entry that stored the
// observation (the proposer's values are overwritten): LoggedAt is the
// entry's AppendedAt, stamped by the leader that appended it, LoggedTerm
// that leader's term, and SinceLogged the LoggedAt of the first entry at
// which this (manager, server) observation got its current Kind. Within
// one term they all come from one clock, the leader's, so freshness is
// decided on them (detector.Observation.FreshAt). They are zero for
// entries without AppendedAt (old raft, ApplyBytes).
type Observation struct {
	Manager     string    `json:"manager"`
	Server      string    `json:"server"` // addr
	Reachable   bool      `json:"reachable"`
	Kind        string    `json:"kind"`  // "ok", "refused", "timeout", "auth-error", ...
	Since       time.Time `json:"since"` // when this reachability state began (observer's clock)
	At          time.Time `json:"at"`    // when it was last confirmed (observer's clock)
	Detail      string    `json:"detail,omitempty"`
	LoggedAt    time.Time `json:"logged_at,omitzero"`    // leader's append time of the storing entry
	LoggedTerm  uint64    `json:"logged_term,omitempty"` // term of the storing entry
	SinceLogged time.Time `json:"since_logged,omitzero"` // LoggedAt of the first entry with the current Kind
}

// Lock is the failover lock of an application.
type Lock struct {
	Epoch     uint64    `json:"epoch"`
	Holder    string    `json:"holder"`               // manager id
	Kind      string    `json:"kind"`                 // KindAuto, KindManual, KindSwitch
	OldMaster string    `json:"old_master"`           // the dead (failover) or old (switch) master
	NewMaster string    `json:"new_master,omitempty"` // requested new master, "" = elect
	Started   time.Time `json:"started"`              // first grant of this failover
	Granted   time.Time `json:"granted"`              // grant of this epoch (takeover changes it)
	// Halted is set when the holder released with ResultHalted: the lock
	// stays held until an operator's ForceUnlock.
	Halted bool   `json:"halted,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// JournalEntry is one phase record of the current or last failover. It is
// mharaft's one journal entry type: the failover package's LocalJournal
// (mhactl --local) keeps these too. The pipeline's plan is not in it: it
// is stored once per epoch (EpochPlan).
type JournalEntry struct {
	Epoch  uint64            `json:"epoch"`
	Phase  string            `json:"phase"`
	Status string            `json:"status"` // PhaseStarted, PhaseDone, PhaseFailed
	Detail map[string]string `json:"detail,omitempty"`
	At     time.Time         `json:"at"`
}

// EpochPlan is the plan the pipeline recorded last at one epoch of the
// lock: a resuming holder (a later epoch) reads the latest one.
type EpochPlan struct {
	Epoch uint64 `json:"epoch"`
	// Plan is the pipeline's plan (failover.Plan as JSON), opaque here.
	Plan string `json:"plan"`
}

// legacyPlanKey is the journal detail key under which entries written
// before EpochPlan carried the plan, each entry a copy. Apply and Restore
// move such a plan to its epoch's EpochPlan and drop the key.
const legacyPlanKey = "plan"

// HistoryEntry is one finished failover or switch.
type HistoryEntry struct {
	App       string    `json:"app"`
	Kind      string    `json:"kind"`
	Epoch     uint64    `json:"epoch"`
	OldMaster string    `json:"old_master"`
	NewMaster string    `json:"new_master,omitempty"`
	Holder    string    `json:"holder"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Result    string    `json:"result"` // ResultSuccess, ResultFailed, ResultHalted, ResultRefused
	Summary   string    `json:"summary,omitempty"`
	// Attempts is how many consecutive refused attempts with this Kind,
	// OldMaster and Summary this entry stands for (1 for every other
	// entry; 0 in entries written before it existed means 1). A repeated
	// refusal updates the entry: Epoch, Holder and Finished become the
	// latest attempt's, FirstEpoch keeps the first one's epoch.
	Attempts   int    `json:"attempts,omitempty"`
	FirstEpoch uint64 `json:"first_epoch,omitempty"`
}

// AutoRetry is the state of the retry policy of refused automatic
// failovers of one application (see the AutoRetry constants). It is reset
// by a successful failover or switch and by Ack; a manual lock resets the
// counters but not Halted.
type AutoRetry struct {
	Refusals    int       `json:"refusals"`              // refusals in the current window
	WindowStart time.Time `json:"window_start,omitzero"` // release time of the window's first refusal
	LastRefusal time.Time `json:"last_refusal,omitzero"` // release time of the latest refusal
	LastReason  string    `json:"last_reason,omitempty"` // its summary
	NextAttempt time.Time `json:"next_attempt,omitzero"` // no automatic lock before this
	Halted      bool      `json:"halted,omitempty"`      // no automatic lock until Ack
	HaltReason  string    `json:"halt_reason,omitempty"` // why, for operators
	HaltedAt    time.Time `json:"halted_at,omitzero"`
}

// autoBackoff is the wait after the n-th refusal (n >= 1) of a window.
func autoBackoff(n int) time.Duration {
	d := AutoRetryFirstBackoff
	for i := 1; i < n && d < AutoRetryMaxBackoff; i++ {
		d *= 2
	}
	return min(d, AutoRetryMaxBackoff)
}

// LastFailover is the anti-flapping record: the last successful failover
// (automatic or manual; switches do not count).
type LastFailover struct {
	Epoch        uint64    `json:"epoch"`
	Kind         string    `json:"kind"`
	Finished     time.Time `json:"finished"`
	Acknowledged bool      `json:"acknowledged"`
	AckedBy      string    `json:"acked_by,omitempty"`
	AckedAt      time.Time `json:"acked_at,omitempty"`
}

// AppState is the replicated state of one application.
type AppState struct {
	Name               string    `json:"name"`
	Servers            []Server  `json:"servers"`
	LastFailoverMinute int       `json:"last_failover_minute"`
	Master             string    `json:"master,omitempty"` // addr
	Topology           *Topology `json:"topology,omitempty"`
	// Observations: manager id -> server addr -> latest observation.
	Observations map[string]map[string]Observation `json:"observations,omitempty"`
	Lock         *Lock                             `json:"lock,omitempty"` // nil when free
	LastEpoch    uint64                            `json:"last_epoch"`
	Journal      []JournalEntry                    `json:"journal,omitempty"`
	// Plans holds the plan of each epoch of the journal's failover that
	// recorded one, oldest first, one per epoch; it starts and ends with
	// the journal.
	Plans        []EpochPlan   `json:"plans,omitempty"`
	LastFailover *LastFailover `json:"last_failover,omitempty"`
	Paused       bool          `json:"paused,omitempty"`
	PausedBy     string        `json:"paused_by,omitempty"`
	PauseReason  string        `json:"pause_reason,omitempty"`
	// AutoRetry is the retry policy state after refused automatic
	// failovers; nil when there is none.
	AutoRetry *AutoRetry `json:"auto_retry,omitempty"`
	// ConfigNames are the server names of the configuration file that
	// last registered the app. Servers added or removed at run time
	// (`mhactl server add/remove`) differ from it and persist until the
	// configuration file itself changes.
	ConfigNames []string `json:"config_names,omitempty"`
	// Divergences are the former masters found holding transactions the
	// current master lacks, one per server (divergence.go).
	Divergences []Divergence `json:"divergences,omitempty"`
}

// Server returns the server whose Name or Addr equals key.
func (a *AppState) Server(key string) (Server, bool) {
	for _, s := range a.Servers {
		if s.Name == key || s.Addr() == key {
			return s, true
		}
	}
	return Server{}, false
}

// LastPlan returns the plan recorded last (at the latest epoch that
// recorded one), "" when there is none.
func (a *AppState) LastPlan() string {
	if len(a.Plans) == 0 {
		return ""
	}
	return a.Plans[len(a.Plans)-1].Plan
}

// PlanAt returns the plan in force at epoch: the one recorded at the
// latest epoch up to it ("" when none was).
func (a *AppState) PlanAt(epoch uint64) string {
	plan := ""
	for _, p := range a.Plans {
		if p.Epoch <= epoch {
			plan = p.Plan
		}
	}
	return plan
}

// setPlan records plan as the plan of epoch, replacing the one recorded
// earlier at that epoch.
func (a *AppState) setPlan(epoch uint64, plan string) {
	for i := range a.Plans {
		if a.Plans[i].Epoch == epoch {
			a.Plans[i].Plan = plan
			return
		}
	}
	a.Plans = append(a.Plans, EpochPlan{Epoch: epoch, Plan: plan})
}

// takeLegacyPlan returns the plan an entry written before EpochPlan
// carries in its detail, and the detail without it (nil when nothing else
// is left). The detail passed in is not changed.
func takeLegacyPlan(detail map[string]string) (plan string, rest map[string]string) {
	plan, ok := detail[legacyPlanKey]
	if !ok {
		return "", detail
	}
	for k, v := range detail {
		if k == legacyPlanKey {
			continue
		}
		if rest == nil {
			rest = map[string]string{}
		}
		rest[k] = v
	}
	return plan, rest
}

// moveLegacyPlans moves the plans that entries written before EpochPlan
// carry in their details to the epochs' plans (the last entry of an epoch
// wins, as it did when each entry carried a copy); Restore calls it on
// old snapshots.
func (a *AppState) moveLegacyPlans() {
	for i := range a.Journal {
		plan, rest := takeLegacyPlan(a.Journal[i].Detail)
		a.Journal[i].Detail = rest
		if plan != "" {
			a.setPlan(a.Journal[i].Epoch, plan)
		}
	}
}

// Clone returns a deep copy.
func (a *AppState) Clone() AppState {
	c := *a
	c.Servers = slices.Clone(a.Servers)
	c.ConfigNames = slices.Clone(a.ConfigNames)
	if a.Topology != nil {
		t := *a.Topology
		t.Servers = slices.Clone(a.Topology.Servers)
		c.Topology = &t
	}
	if a.Observations != nil {
		c.Observations = make(map[string]map[string]Observation, len(a.Observations))
		for m, byServer := range a.Observations {
			c.Observations[m] = maps.Clone(byServer)
		}
	}
	if a.Lock != nil {
		l := *a.Lock
		c.Lock = &l
	}
	c.Journal = make([]JournalEntry, len(a.Journal))
	for i, e := range a.Journal {
		e.Detail = maps.Clone(e.Detail)
		c.Journal[i] = e
	}
	if a.Journal == nil {
		c.Journal = nil
	}
	c.Plans = slices.Clone(a.Plans)
	c.Divergences = cloneDivergences(a.Divergences)
	if a.LastFailover != nil {
		lf := *a.LastFailover
		c.LastFailover = &lf
	}
	if a.AutoRetry != nil {
		r := *a.AutoRetry
		c.AutoRetry = &r
	}
	return c
}
