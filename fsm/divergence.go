package fsm

import (
	"fmt"
	"slices"
	"time"
)

// Divergence: a former master found holding transactions that the master
// which replaced it never got (see failover/doc.go, "Divergence"). The
// leader records one Divergence per server and failover epoch; it keeps the
// server out of the topology until it is rejoined.

// Lock kinds of the divergence work. Like KindRejoin they change no
// master, journal nothing (the last failover's journal and plans stay) and
// arm no anti-flapping.
const (
	// KindDivergence: the leader fences a returning former master that
	// holds divergent transactions and records them.
	KindDivergence = "divergence"
	// KindReconcile: an operator's replay of those transactions on the
	// current master (`mhactl reconcile --apply`).
	KindReconcile = "reconcile"
)

// KeepsMaster tells whether a lock of kind leaves the master and its
// routing alone (rejoin, divergence, reconcile): the master keeps taking
// writes while such a lock is held.
func KeepsMaster(kind string) bool {
	return kind == KindRejoin || kind == KindDivergence || kind == KindReconcile
}

// Divergence states.
const (
	DivergenceDetected   = "detected"   // fenced and recorded; nothing replayed yet
	DivergenceReconciled = "reconciled" // replayed on the current master (Replay*)
	DivergenceRejoined   = "rejoined"   // the server replicates from the current master again
)

// Divergence is one former master's divergent transactions.
type Divergence struct {
	Server string `json:"server"` // name
	Addr   string `json:"addr"`
	// Epoch is the epoch of the failover the server missed.
	Epoch        uint64 `json:"epoch"`
	Transactions int    `json:"transactions"`
	FirstGTID    string `json:"first_gtid,omitempty"`
	LastGTID     string `json:"last_gtid,omitempty"`
	From         string `json:"from"` // the failover point in the server's binlog (file:pos)
	To           string `json:"to"`   // the end of its last divergent transaction
	// File is the reviewable file on Manager's host ("" when it could not
	// be written; FileError says why).
	File       string    `json:"file,omitempty"`
	FileError  string    `json:"file_error,omitempty"`
	Manager    string    `json:"manager"`
	DetectedAt time.Time `json:"detected_at"`
	Fenced     string    `json:"fenced,omitempty"` // what the fence did
	State      string    `json:"state"`
	// The replay (state reconciled): how many transactions, on which
	// master, its GTID there and its range in that master's binlog.
	Applied      int       `json:"applied,omitempty"`
	ReplayMaster string    `json:"replay_master,omitempty"` // addr
	ReplayGTID   string    `json:"replay_gtid,omitempty"`
	ReplayStart  string    `json:"replay_start,omitempty"` // file:pos of its first event
	ReplayEnd    string    `json:"replay_end,omitempty"`   // file:pos after its last event
	Conflict     string    `json:"conflict,omitempty"`     // the last refused replay's conflict
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

// Active tells whether d keeps its server out of the topology.
func (d Divergence) Active() bool { return d.State != DivergenceRejoined }

// RecordDivergenceType stores or replaces the Divergence of a server. The
// IgnoreUnknown bit lets managers without it skip it (rolling upgrades).
const RecordDivergenceType CommandType = IgnoreUnknown | 40

// RecordDivergenceCmd records d under the held lock of epoch LockEpoch
// (the fencing token: a divergence, reconcile or rejoin lock).
type RecordDivergenceCmd struct {
	App        string     `json:"app"`
	LockEpoch  uint64     `json:"lock_epoch"`
	Divergence Divergence `json:"divergence"`
}

// EncodeRecordDivergence builds the log entry.
func EncodeRecordDivergence(c RecordDivergenceCmd) []byte {
	return mustEncode(RecordDivergenceType, c)
}

func init() {
	register(RecordDivergenceType, applyRecordDivergence)
	commandNames[RecordDivergenceType] = "record_divergence"
}

func applyRecordDivergence(f *FSM, c *RecordDivergenceCmd) any {
	a, err := f.lookup(c.App)
	if err != nil {
		return fmt.Errorf("record divergence: %w", err)
	}
	s := &a.state
	d := c.Divergence
	if err := checkEpoch(s, c.LockEpoch, "record divergence of "+d.Server); err != nil {
		return err
	}
	if !KeepsMaster(s.Lock.Kind) {
		return fmt.Errorf("record divergence of %s for app %q: under a %s lock: %w", d.Server, c.App, s.Lock.Kind, ErrInvalid)
	}
	switch d.State {
	case DivergenceDetected, DivergenceReconciled, DivergenceRejoined:
	default:
		return fmt.Errorf("record divergence of %s for app %q: state %q: %w", d.Server, c.App, d.State, ErrInvalid)
	}
	if _, ok := s.Server(d.Server); !ok || d.Server == "" {
		return fmt.Errorf("record divergence of %q for app %q: %w", d.Server, c.App, ErrUnknownServer)
	}
	for i := range s.Divergences {
		if s.Divergences[i].Server == d.Server {
			s.Divergences[i] = d
			return nil
		}
	}
	s.Divergences = append(s.Divergences, d)
	return nil
}

// DivergenceOf returns the recorded divergence of server (name or addr).
func (a *AppState) DivergenceOf(server string) (Divergence, bool) {
	srv, ok := a.Server(server)
	if !ok {
		return Divergence{}, false
	}
	for _, d := range a.Divergences {
		if d.Server == srv.Name {
			return d, true
		}
	}
	return Divergence{}, false
}

// Diverged tells whether server (name or addr) has an active divergence:
// it must stay out of the topology.
func (a *AppState) Diverged(server string) bool {
	d, ok := a.DivergenceOf(server)
	return ok && d.Active()
}

func cloneDivergences(d []Divergence) []Divergence { return slices.Clone(d) }
