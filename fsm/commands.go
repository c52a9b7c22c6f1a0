package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType is the first byte of every log entry.
type CommandType uint8

// IgnoreUnknown is the high bit of a CommandType: a manager that does not
// know the command skips it instead of panicking (rolling upgrades).
const IgnoreUnknown CommandType = 0x80

// Command types. Values are part of the log format: never renumber.
const (
	RegisterAppType  CommandType = 1
	SetTopologyType  CommandType = 2
	ObserveType      CommandType = 3
	AcquireLockType  CommandType = 4
	JournalPhaseType CommandType = 5
	ReleaseLockType  CommandType = 6
	SetMasterType    CommandType = 7
	AckType          CommandType = 8
	PauseType        CommandType = 9
	ResumeType       CommandType = 10
	AddServerType    CommandType = 11
	RemoveServerType CommandType = 12
	ForceUnlockType  CommandType = 13

	// ObserveBatchType carries the IgnoreUnknown bit: a manager of an
	// older version skips these entries (its replica then lacks the
	// upgraded managers' observations, which it counts as unknown: never
	// "cannot reach") instead of stopping. Finish a rolling upgrade before
	// relying on every manager's veto.
	ObserveBatchType CommandType = IgnoreUnknown | 20
	// SetTopologyBatchType carries the IgnoreUnknown bit too: a manager
	// of an older version skips these entries (its status then shows
	// older topology summaries until the upgrade is finished).
	SetTopologyBatchType CommandType = IgnoreUnknown | 21
)

// commandNames are the names of the command types in metrics and logs.
var commandNames = map[CommandType]string{
	RegisterAppType: "register_app", SetTopologyType: "set_topology", ObserveType: "observe",
	AcquireLockType: "acquire_lock", JournalPhaseType: "journal_phase", ReleaseLockType: "release_lock",
	SetMasterType: "set_master", AckType: "ack", PauseType: "pause", ResumeType: "resume",
	AddServerType: "add_server", RemoveServerType: "remove_server", ForceUnlockType: "force_unlock",
	ObserveBatchType: "observe_batch", SetTopologyBatchType: "set_topology_batch",
}

// String is the command type's name ("observe_batch"), or "type_N" for a
// type this version does not name.
func (t CommandType) String() string {
	if n, ok := commandNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type_%d", uint8(t))
}

// TypeOf is the command type of an encoded entry (its first byte) and
// false for an empty one.
func TypeOf(data []byte) (CommandType, bool) {
	if len(data) == 0 {
		return 0, false
	}
	return CommandType(data[0]), true
}

// RegisterAppCmd creates an application or updates its server set and
// settings (idempotent). Lock, epochs, journal, history and anti-flapping
// data are kept. Master, when set, is taken only if none is known yet.
type RegisterAppCmd struct {
	App                string    `json:"app"`
	Servers            []Server  `json:"servers"`
	LastFailoverMinute int       `json:"last_failover_minute"`
	Master             string    `json:"master,omitempty"`
	At                 time.Time `json:"at"`
	// ConfigNames: the configuration file's server names (default: the
	// names of Servers), see AppState.ConfigNames.
	ConfigNames []string `json:"config_names,omitempty"`
}

// SetTopologyCmd stores the last discovered topology.
type SetTopologyCmd struct {
	App      string   `json:"app"`
	Topology Topology `json:"topology"`
}

// SetTopologyBatchCmd stores the topology summaries of several
// applications in one entry (the leader's periodic discoveries, issue 17).
// Unlike SetTopologyCmd, a summary observed before the stored one
// (ObservedAt) is skipped: a batch collected before a requested discovery
// stored a newer summary must not bring the older one back.
type SetTopologyBatchCmd struct {
	Topologies []SetTopologyCmd `json:"topologies"`
}

// ObserveCmd stores one manager's observation of one server.
type ObserveCmd struct {
	App         string      `json:"app"`
	Observation Observation `json:"observation"`
}

// ObserveBatchCmd is what one manager publishes in one entry: its changed
// observations of any number of applications, and the refresh of those
// that did not change (package detector's Batcher builds it, one writer
// per manager).
//
// Observations are stored exactly as ObserveCmd stores one (the entry's
// time and term become LoggedAt and LoggedTerm); their
// Observation.Manager is Manager when empty and must be Manager otherwise.
// A Refresh re-stamps an observation already stored, and only the one it
// names: the observation of Manager for App and Server whose Since is
// Since. It gets the entry's time and term as LoggedAt and LoggedTerm and
// At as At; its Kind, Reachable, Since, Detail and SinceLogged stay. A
// refresh that names nothing stored (a newer observation replaced it, the
// server was removed, a restored snapshot lacks it) changes nothing and is
// returned in ObserveBatchResult.Unmatched, so the proposer publishes the
// full observation again.
type ObserveBatchCmd struct {
	Manager      string           `json:"manager"`
	Observations []ObserveCmd     `json:"observations,omitempty"`
	Refresh      []ObserveRefresh `json:"refresh,omitempty"`
	// At is the proposer's clock when it built the batch: the At (last
	// confirmed, for operators) of every refreshed observation.
	At time.Time `json:"at"`
}

// ObserveRefresh names one stored observation of the batch's manager; the
// short JSON keys keep a batch of 1,000 applications near 50 KB.
type ObserveRefresh struct {
	App    string `json:"a"`
	Server string `json:"s"` // name or addr
	// Since is the stored observation's Since (the observer's clock, in
	// Unix nanoseconds): it identifies one observation, so a refresh can
	// never revive an earlier one of the same server.
	Since int64 `json:"t"`
}

// ObserveBatchResult is the Apply response of an ObserveBatch when some of
// it was not applied (nil when everything was).
type ObserveBatchResult struct {
	// Unmatched are the refreshes that named no stored observation.
	Unmatched []ObserveRefresh `json:"unmatched,omitempty"`
	// Rejected are the observations that were refused (unknown
	// application or server), with the reason.
	Rejected []RejectedObservation `json:"rejected,omitempty"`
}

// RejectedObservation is one observation of a batch that was refused.
type RejectedObservation struct {
	App    string `json:"app"`
	Server string `json:"server"`
	Error  string `json:"error"`
}

// AcquireLockCmd asks for the failover lock of App. With TakeOver set to
// the epoch of the lock currently held, a new holder (a new leader
// resuming a failover) takes the lock with a new epoch; the journal is
// kept.
//
// Seen, when set, makes the grant a compare-and-set: the lock is refused
// with ErrStaleVerdict unless the application's Master and LastEpoch are
// still the ones the caller's evaluation read (an evaluation that took
// seconds must not lock against a master that changed meanwhile). A
// TakeOver request ignores Seen: its own check is TakeOver == Lock.Epoch.
type AcquireLockCmd struct {
	App                string     `json:"app"`
	Holder             string     `json:"holder"`
	Kind               string     `json:"kind"`
	OldMaster          string     `json:"old_master"`
	NewMaster          string     `json:"new_master,omitempty"`
	IgnoreLastFailover bool       `json:"ignore_last_failover,omitempty"` // manual only
	TakeOver           uint64     `json:"take_over,omitempty"`
	Seen               *SeenState `json:"seen,omitempty"`
	At                 time.Time  `json:"at"`
}

// SeenState is what the evaluation behind an AcquireLock read from the
// replicated state: the application's Master (addr) and LastEpoch.
type SeenState struct {
	Master string `json:"master"`
	Epoch  uint64 `json:"epoch"`
}

// JournalPhaseCmd appends one entry to the journal; Entry.Epoch is the
// fencing token. Plan, when set, becomes the plan of that epoch (replacing
// the one recorded earlier at the epoch); the journal's writer sends it
// when it changed. An entry of an older writer that carries the plan in
// Entry.Detail["plan"] has it moved there the same way.
type JournalPhaseCmd struct {
	App   string       `json:"app"`
	Entry JournalEntry `json:"entry"`
	Plan  string       `json:"plan,omitempty"`
}

// ReleaseLockCmd ends a failover with a result and writes history. On
// ResultSuccess with NewMaster set, NewMaster becomes the master and,
// for failovers, the anti-flapping record is renewed. ResultHalted
// keeps the lock (Halted) until ForceUnlock. ResultRefused (the pipeline
// refused before acting) releases the lock, ignores NewMaster, renews
// nothing and counts toward the AutoRetry policy when the lock was
// automatic.
type ReleaseLockCmd struct {
	App       string    `json:"app"`
	Epoch     uint64    `json:"epoch"`
	Result    string    `json:"result"`
	NewMaster string    `json:"new_master,omitempty"`
	Summary   string    `json:"summary,omitempty"`
	At        time.Time `json:"at"`
}

// SetMasterCmd records the current master. While a lock is held, Epoch
// must be the lock's epoch.
type SetMasterCmd struct {
	App    string    `json:"app"`
	Master string    `json:"master"`
	Epoch  uint64    `json:"epoch,omitempty"`
	At     time.Time `json:"at"`
}

// AckCmd acknowledges the last failover (anti-flapping).
type AckCmd struct {
	App string    `json:"app"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// PauseCmd and ResumeCmd set and clear the maintenance flag.
type PauseCmd struct {
	App    string    `json:"app"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// ResumeCmd clears the maintenance flag.
type ResumeCmd struct {
	App string    `json:"app"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// AddServerCmd adds one server (masterha_conf_host --command=add).
type AddServerCmd struct {
	App    string `json:"app"`
	Server Server `json:"server"`
}

// RemoveServerCmd removes one server by name or addr.
type RemoveServerCmd struct {
	App    string `json:"app"`
	Server string `json:"server"`
}

// ForceUnlockCmd is the operator's way out of a halted failover (or a
// holder that is gone): the lock is cleared whatever its holder; Epoch,
// when non-zero, must match. A lock that was not released writes a
// history entry with ResultHalted. Epochs are not reused.
type ForceUnlockCmd struct {
	App    string    `json:"app"`
	Epoch  uint64    `json:"epoch,omitempty"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Encode builds a log entry: the type byte and the JSON payload.
func Encode(t CommandType, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	return append([]byte{byte(t)}, body...), nil
}

// mustEncode is for the typed constructors, whose payloads always marshal.
func mustEncode(t CommandType, payload any) []byte {
	b, err := Encode(t, payload)
	if err != nil {
		panic(err)
	}
	return b
}

// Typed constructors.

func EncodeRegisterApp(c RegisterAppCmd) []byte   { return mustEncode(RegisterAppType, c) }
func EncodeSetTopology(c SetTopologyCmd) []byte   { return mustEncode(SetTopologyType, c) }
func EncodeObserve(c ObserveCmd) []byte           { return mustEncode(ObserveType, c) }
func EncodeAcquireLock(c AcquireLockCmd) []byte   { return mustEncode(AcquireLockType, c) }
func EncodeJournalPhase(c JournalPhaseCmd) []byte { return mustEncode(JournalPhaseType, c) }
func EncodeReleaseLock(c ReleaseLockCmd) []byte   { return mustEncode(ReleaseLockType, c) }
func EncodeSetMaster(c SetMasterCmd) []byte       { return mustEncode(SetMasterType, c) }
func EncodeAck(c AckCmd) []byte                   { return mustEncode(AckType, c) }
func EncodePause(c PauseCmd) []byte               { return mustEncode(PauseType, c) }
func EncodeResume(c ResumeCmd) []byte             { return mustEncode(ResumeType, c) }
func EncodeAddServer(c AddServerCmd) []byte       { return mustEncode(AddServerType, c) }
func EncodeRemoveServer(c RemoveServerCmd) []byte { return mustEncode(RemoveServerType, c) }
func EncodeForceUnlock(c ForceUnlockCmd) []byte   { return mustEncode(ForceUnlockType, c) }
func EncodeObserveBatch(c ObserveBatchCmd) []byte { return mustEncode(ObserveBatchType, c) }
func EncodeSetTopologyBatch(c SetTopologyBatchCmd) []byte {
	return mustEncode(SetTopologyBatchType, c)
}
