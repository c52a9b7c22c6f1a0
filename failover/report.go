package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/internal/secret"
)

// Plan is what a pipeline decided and recorded; it goes to the journal
// with every entry (stored once per epoch, see Journal) so that another
// manager can resume the pipeline where this one stopped.
type Plan struct {
	Kind      string    `json:"kind"` // "failover" or "switch"
	App       string    `json:"app"`
	ID        string    `json:"id"` // start timestamp YYYYMMDDhhmmss, used in artifact names
	Started   time.Time `json:"started"`
	OldMaster string    `json:"old_master"` // server name (config section)
	NewMaster string    `json:"new_master,omitempty"`
	GTID      bool      `json:"gtid"`

	Latest     string   `json:"latest,omitempty"`
	Oldest     string   `json:"oldest,omitempty"`
	LatestRead Coord    `json:"latest_read,omitempty"`
	OldestRead Coord    `json:"oldest_read,omitempty"`
	Replicas   []string `json:"replicas,omitempty"` // alive replicas other than the new master
	Ignored    []string `json:"ignored,omitempty"`  // dead replicas with ignore_fail

	DeadSSH   bool   `json:"dead_ssh"`             // the dead master was reachable over SSH
	TailFile  string `json:"tail_file,omitempty"`  // local path of the saved binlog tail
	TailStart Coord  `json:"tail_start,omitempty"` // first byte saved (the latest replica's read position)
	TailEnd   Coord  `json:"tail_end,omitempty"`   // end of the dead master's binlog that was saved
	TailGTID  string `json:"tail_gtid,omitempty"`  // last GTID in the saved tail, when known
	// TailSource is the [binlogN] block (binlog server) the tail was read
	// from when the dead master's binlog could not be read; "" for the
	// dead master itself.
	TailSource string `json:"tail_source,omitempty"`
	// ManagerHost is the host name of the manager that saved the tail and
	// the top-up into its manager_workdir (a resume on another host names
	// it when a file is missing there).
	ManagerHost string `json:"manager_host,omitempty"`

	// DeadFence is what the fence of the dead master over MySQL found and
	// did after the IP hook and shutdown_script (see fenceDeadMaster).
	DeadFence string `json:"dead_fence,omitempty"`
	// The top-up: the dead master's binlog from TailEnd on, read again
	// after the fence, applied after the tail everywhere the tail is.
	// TopUpChecked says it was read; TopUpFile is "" when it held no
	// transaction.
	TopUpChecked bool   `json:"top_up_checked,omitempty"`
	TopUpFile    string `json:"top_up_file,omitempty"`
	TopUpEnd     Coord  `json:"top_up_end,omitempty"`
	TopUpGTID    string `json:"top_up_gtid,omitempty"`

	NewMasterPos  Coord  `json:"new_master_pos,omitempty"`  // SHOW MASTER STATUS after apply / at promotion
	NewMasterGTID string `json:"new_master_gtid,omitempty"` // gtid_binlog_pos (MariaDB) / gtid_executed (MySQL)
	OrigMasterPos Coord  `json:"orig_master_pos,omitempty"` // switch: the fenced old master's final position
	OrigGTID      string `json:"orig_gtid,omitempty"`
}

// Encode renders the plan for the journal.
func (p *Plan) Encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// DecodePlan parses Encode's output.
func DecodePlan(s string) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("decode failover plan: %w", err)
	}
	return &p, nil
}

// PhaseTiming is how long one phase took.
type PhaseTiming struct {
	Phase string        `json:"phase"`
	Took  time.Duration `json:"took_ns"`
	Secs  float64       `json:"seconds"`
}

// ReplicaOutcome is the final state of one replica.
type ReplicaOutcome struct {
	Server string `json:"server"`
	OK     bool   `json:"ok"`
	State  string `json:"state"`
}

// AppliedLogs is what the recovery applied to one server.
type AppliedLogs struct {
	Server       string   `json:"server"`
	Files        []string `json:"files"`
	Transactions int      `json:"transactions"`
	Events       int      `json:"events"`
	LastFile     string   `json:"last_file,omitempty"` // end of the last committed transaction
	LastPos      int64    `json:"last_pos,omitempty"`
	LastGTID     string   `json:"last_gtid,omitempty"`
	Seconds      float64  `json:"seconds"`
	Error        string   `json:"error,omitempty"`
	// Method is how the events were applied ("statements" or
	// "replication"); Fallback says why apply_method=auto used statements.
	Method   string `json:"method,omitempty"`
	Fallback string `json:"fallback,omitempty"`
}

// LostRange names the part of the dead master's binlog that could not be
// recovered.
type LostRange struct {
	From Coord  `json:"from"`
	To   string `json:"to"`
	Why  string `json:"why"`
}

// Report is the outcome of a pipeline, printed like MHA's "Failover Report"
// and written as JSON to the manager workdir.
type Report struct {
	Kind      string        `json:"kind"`
	App       string        `json:"app"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	Subject   string        `json:"subject"`
	OldMaster string        `json:"old_master"`
	NewMaster string        `json:"new_master,omitempty"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished"`
	Total     float64       `json:"total_seconds"`
	Phases    []PhaseTiming `json:"phases"`
	Lines     []string      `json:"lines"` // MHA's mail body
	Lost      *LostRange    `json:"lost,omitempty"`
	// PossiblyLost: the dead master's binlog after From could not be
	// checked after fencing (or the master could not be fenced): it may,
	// not must, hold writes the new master lacks.
	PossiblyLost *LostRange       `json:"possibly_lost,omitempty"`
	Replicas     []ReplicaOutcome `json:"replicas,omitempty"`
	Hooks        []HookResult     `json:"hooks,omitempty"`
	Applied      []AppliedLogs    `json:"applied,omitempty"`
	// WritesBlocked: switch only, from the fence to the new master writable.
	WritesBlocked     time.Duration `json:"writes_blocked_ns,omitempty"`
	WritesBlockedSecs float64       `json:"writes_blocked_seconds,omitempty"`
	Plan              *Plan         `json:"plan,omitempty"`
	// Epoch is the failover lock's epoch of the run (the manager sets it;
	// 0 for mhactl --local).
	Epoch uint64 `json:"epoch,omitempty"`
	Path  string `json:"-"` // where WriteJSON wrote it
}

func (r *Report) addf(format string, args ...any) {
	r.Lines = append(r.Lines, fmt.Sprintf(format, args...))
}

func (r *Report) phase(name string, took time.Duration) {
	r.Phases = append(r.Phases, PhaseTiming{Phase: name, Took: took, Secs: took.Seconds()})
}

// Print writes the report in MHA's words.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n----- %s Report -----\n\n%s\n\n", strings.ToUpper(r.Kind[:1])+r.Kind[1:], r.Subject)
	for _, l := range r.Lines {
		fmt.Fprintln(w, l)
	}
	if r.Lost != nil {
		fmt.Fprintf(w, "LOST: events of the dead master's binlog from %s to %s could not be recovered: %s\n",
			r.Lost.From, r.Lost.To, r.Lost.Why)
	}
	if r.PossiblyLost != nil {
		fmt.Fprintf(w, "POSSIBLY LOST (a possible, not certain, loss): writes of the dead master after %s: %s\n",
			r.PossiblyLost.From, r.PossiblyLost.Why)
	}
	if len(r.Replicas) > 0 {
		fmt.Fprintln(w, "\nReplicas:")
		for _, s := range r.Replicas {
			status := "OK"
			if !s.OK {
				status = "FAILED"
			}
			fmt.Fprintf(w, "  %s: %s: %s\n", s.Server, status, s.State)
		}
	}
	if r.WritesBlocked > 0 {
		fmt.Fprintf(w, "\nWrites were blocked for %.3f s (old master fenced until new master writable).\n", r.WritesBlocked.Seconds())
	}
	fmt.Fprintln(w, "\nTime per phase:")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %-40s %8.3f s\n", p.Phase, p.Took.Seconds())
	}
	fmt.Fprintf(w, "  %-40s %8.3f s\n", "total", r.Total)
	if r.Error != "" {
		fmt.Fprintf(w, "\nERROR: %s\n", r.Error)
	}
}

// WriteJSON writes the report to dir/<kind>_report_<app>_epoch<N>.json
// when Epoch is set (one file per run of the cluster, N the epoch that
// `mhactl history` shows, zero-padded to 10 digits so that the names sort
// like the epochs), else to dir/<kind>_report_<app>_<id>.json (id: the
// plan's start second) with _2, _3, ... appended when that file exists: a
// report never overwrites another run's.
func (r *Report) WriteJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := secret.MkdirAll(dir); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s_report_%s_epoch%010d.json", r.Kind, r.App, r.Epoch))
	if r.Epoch == 0 {
		id := r.Started.Format("20060102150405")
		if r.Plan != nil && r.Plan.ID != "" {
			id = r.Plan.ID
		}
		base := filepath.Join(dir, fmt.Sprintf("%s_report_%s_%s", r.Kind, r.App, id))
		path = base + ".json"
		for n := 2; fileExists(path); n++ {
			path = fmt.Sprintf("%s_%d.json", base, n)
		}
	}
	if err := secret.WriteFile(path, append(b, '\n')); err != nil {
		return "", fmt.Errorf("write report %s: %w", path, err)
	}
	r.Path = path
	return path, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Topology prints MHA's From:/To: picture.
func Topology(oldMaster *config.Server, oldReplicas []*config.Server, newMaster *config.Server, newReplicas []*config.Server, oldLabel string) string {
	var b strings.Builder
	b.WriteString("From:\n")
	fmt.Fprintf(&b, "%s (%s)\n", oldMaster, oldLabel)
	for _, s := range oldReplicas {
		fmt.Fprintf(&b, " +--%s\n", s)
	}
	b.WriteString("\nTo:\n")
	fmt.Fprintf(&b, "%s (new master)\n", newMaster)
	for _, s := range newReplicas {
		fmt.Fprintf(&b, " +--%s\n", s)
	}
	return b.String()
}
