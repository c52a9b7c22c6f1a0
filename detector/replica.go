package detector

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mharaft/mharaft/config"
	"github.com/mharaft/mharaft/dialect"
)

// ReplicaView is what one replica says about its connection to the master,
// as sampled by this manager. Progress fields compare successive samples, so
// a view from a tracker that has sampled the replica for a while says more
// than a first sample.
type ReplicaView struct {
	Server    string    // config name of the replica
	Reachable bool      // the status query succeeded
	Error     string    // why not, when !Reachable
	SampledAt time.Time // when the status was read

	ReplicaOfMaster bool   // a replication channel of this server points at the master
	MasterHost      string // Master_Host of that channel (or of the first channel)
	MasterPort      int
	IORunning       string // Slave_IO_Running: Yes, No, Connecting, Preparing
	SQLRunning      string
	LastIOErrno     int
	LastIOError     string

	// HeartbeatPeriod is Slave_heartbeat_period (MariaDB); 0 when unknown or off.
	HeartbeatPeriod time.Duration
	// Heartbeats is Slave_received_heartbeats (MariaDB), -1 when unknown.
	Heartbeats int64
	// TrackedSince is when this manager first sampled the replica
	// successfully in the current run of the tracker, or again after a gap
	// of more than TrackGap between two samples.
	TrackedSince time.Time
	// LastProgress is the last sample time at which the received heartbeats
	// or the IO thread's read position (file, position, Gtid_IO_Pos) had
	// changed since the previous sample; TrackedSince when none changed yet.
	LastProgress time.Time
}

// ioConnectErrors are client errors a replica's IO thread reports when it
// cannot talk to its master: the master is gone, not just refusing.
var ioConnectErrors = map[int]bool{
	2002: true, // CR_CONNECTION_ERROR (socket)
	2003: true, // CR_CONN_HOST_ERROR: can't connect
	2005: true, // CR_UNKNOWN_HOST
	2006: true, // CR_SERVER_GONE_ERROR
	2013: true, // CR_SERVER_LOST
	2026: true, // CR_SSL_CONNECTION_ERROR
}

// replicaSays is a replica's testimony about the master.
type replicaSays int

const (
	replicaUnknown  replicaSays = iota // unreachable or stale: no testimony
	replicaConfirms                    // it cannot reach the master either / receives nothing
	replicaRefutes                     // it is connected and receives events or heartbeats
)

// ReplicaJitter is the margin the replica-silence threshold keeps over one
// heartbeat period: how late a live master's heartbeat or event may reach a
// replica and show in a sample (the master's dump thread waking up, the
// network, the sample's own round trip).
const ReplicaJitter = 250 * time.Millisecond

// TrackGap is the longest time between two samples of a replica that its
// progress is compared across. A detector that routing does not ask
// samples only while a master is suspected (Config.OnDemand): across
// a longer gap, counters equal to the last sample's (a reconnected IO
// thread counting heartbeats from zero again) would date the last progress
// to the old sample and testify to a silence nobody watched. After such a
// gap tracking starts over: the silence is counted from the new sample, a
// later verdict, never an earlier one.
const TrackGap = 5 * time.Second

// ReplicaStall is how long a connected replica with heartbeats on must have
// received nothing (no event, no heartbeat), as its samples witness it,
// before it confirms that the master is gone:
//
//	ReplicaStall = window/2 + heartbeat period + ReplicaJitter
//
// Half the window is the pause a master may take and resume from without
// being failed over (jepsen's pause-master-short). A master paused for P
// stopped at most one heartbeat period (plus jitter) after the replica's
// last event or heartbeat and sends again as soon as it resumes, so the
// silence any sample can witness is at most P + heartbeat + jitter; it
// exceeds the stall only when P > window/2. With ping_interval=1 and
// connect_timeout=1 (window 3 s): heartbeat 1 s gives 2.75 s, 0.5 s gives
// 2.25 s, 0.25 s gives 2 s. It is always more than one heartbeat period, so
// a quiet master that sends only heartbeats never looks silent.
func ReplicaStall(window, heartbeat time.Duration) time.Duration {
	return window/2 + heartbeat + ReplicaJitter
}

// judge returns the replica's testimony and a reason in words. A view older
// than window is unknown. An IO thread that is connected refutes unless
// heartbeats are on and the samples witnessed neither heartbeats nor events
// for longer than ReplicaStall, over samples that span that long. The
// silence is measured up to the sample (SampledAt), never up to now: a
// sample says nothing about what the replica received after it. Without
// heartbeat data a quiet master and a paused one look the same, so a
// connected IO thread then always refutes.
func (v ReplicaView) judge(now time.Time, window time.Duration) (replicaSays, string) {
	switch {
	case !v.Reachable:
		return replicaUnknown, fmt.Sprintf("%s: unreachable (%s)", v.Server, v.Error)
	case now.Sub(v.SampledAt) > window:
		return replicaUnknown, fmt.Sprintf("%s: status sample is stale (%s old)", v.Server, now.Sub(v.SampledAt).Round(time.Millisecond))
	}
	if v.IORunning != "Yes" {
		switch {
		case ioConnectErrors[v.LastIOErrno]:
			return replicaConfirms, fmt.Sprintf("%s: IO thread %s, error %d", v.Server, v.IORunning, v.LastIOErrno)
		case v.LastIOErrno == 0:
			return replicaConfirms, fmt.Sprintf("%s: IO thread %s (stopped: receives no events)", v.Server, v.IORunning)
		case v.IORunning == "Connecting":
			// Retrying, and the last attempt got an answer from the master.
			return replicaRefutes, fmt.Sprintf("%s: IO thread retrying, the master answered with error %d", v.Server, v.LastIOErrno)
		default:
			return replicaConfirms, fmt.Sprintf("%s: IO thread stopped after error %d (receives no events)", v.Server, v.LastIOErrno)
		}
	}
	stall := ReplicaStall(window, v.HeartbeatPeriod)
	quiet := v.SampledAt.Sub(v.LastProgress)
	if v.HeartbeatPeriod > 0 && v.Heartbeats >= 0 && !v.TrackedSince.IsZero() &&
		v.SampledAt.Sub(v.TrackedSince) > stall && quiet > stall {
		return replicaConfirms, fmt.Sprintf("%s: IO thread connected but no event or heartbeat for %s (more than %s: half the window, a heartbeat period and %s)",
			v.Server, quiet.Round(time.Millisecond), stall, ReplicaJitter)
	}
	return replicaRefutes, fmt.Sprintf("%s: IO thread connected, no event or heartbeat for %s when sampled (confirms after %s)",
		v.Server, quiet.Round(time.Millisecond), stall)
}

// replicaSample is one parsed status row plus what progress is compared on.
type replicaSample struct {
	view     ReplicaView
	progress string // heartbeats + read position; a change means the master sent something
}

// statusQueries are tried in order: MariaDB's SHOW ALL SLAVES STATUS has
// every channel and the heartbeat counters; SHOW REPLICA STATUS is MySQL
// 8.0.22+ (and MariaDB 10.5+); SHOW SLAVE STATUS covers the rest.
var statusQueries = []string{"SHOW ALL SLAVES STATUS", "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}

// col returns the first of the named columns present in row.
func col(row map[string]string, names ...string) string {
	for _, n := range names {
		if v, ok := row[n]; ok {
			return v
		}
	}
	return ""
}

// sameAddr reports whether host:port names the master (by hostname or IP).
func sameAddr(host string, port int, master *config.Server) bool {
	if port != master.Port {
		return false
	}
	return host != "" && (host == master.Hostname || host == master.IP)
}

// parseReplicaStatus picks the channel that replicates from master out of
// the rows of a status query (MariaDB or MySQL column names) and fills a
// view. With no matching channel the first row describes the server's
// source and ReplicaOfMaster is false.
func parseReplicaStatus(name string, rows []map[string]string, master *config.Server) replicaSample {
	v := ReplicaView{Server: name, Reachable: true, Heartbeats: -1}
	if len(rows) == 0 {
		return replicaSample{view: v}
	}
	row := rows[0]
	for _, r := range rows {
		port, _ := strconv.Atoi(col(r, "Master_Port", "Source_Port"))
		if sameAddr(col(r, "Master_Host", "Source_Host"), port, master) {
			row, v.ReplicaOfMaster = r, true
			break
		}
	}
	v.MasterHost = col(row, "Master_Host", "Source_Host")
	v.MasterPort, _ = strconv.Atoi(col(row, "Master_Port", "Source_Port"))
	v.IORunning = col(row, "Slave_IO_Running", "Replica_IO_Running")
	v.SQLRunning = col(row, "Slave_SQL_Running", "Replica_SQL_Running")
	v.LastIOErrno, _ = strconv.Atoi(col(row, "Last_IO_Errno"))
	v.LastIOError = col(row, "Last_IO_Error")
	if s := col(row, "Slave_heartbeat_period"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			v.HeartbeatPeriod = time.Duration(f * float64(time.Second))
		}
	}
	if s := col(row, "Slave_received_heartbeats"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			v.Heartbeats = n
		}
	}
	progress := strings.Join([]string{
		strconv.FormatInt(v.Heartbeats, 10),
		col(row, "Master_Log_File", "Source_Log_File"),
		col(row, "Read_Master_Log_Pos", "Read_Source_Log_Pos"),
		col(row, "Gtid_IO_Pos", "Retrieved_Gtid_Set"),
	}, "|")
	return replicaSample{view: v, progress: progress}
}

// replicaTracker samples the replicas of one master and remembers, per
// replica, when its heartbeats or read position last moved.
type replicaTracker struct {
	now     func() time.Time
	timeout time.Duration

	mu     sync.Mutex
	dbs    map[string]*sql.DB // per server name
	query  map[string]int     // index into statusQueries that worked
	last   map[string]replicaSample
	views  map[string]ReplicaView
	master string // the master the history belongs to
}

func newReplicaTracker(now func() time.Time, timeout time.Duration) *replicaTracker {
	return &replicaTracker{now: now, timeout: timeout, dbs: map[string]*sql.DB{},
		query: map[string]int{}, last: map[string]replicaSample{}, views: map[string]ReplicaView{}}
}

// sample queries every server of app except master in parallel and returns
// the views in app order.
func (t *replicaTracker) sample(ctx context.Context, app *config.App, master *config.Server) []ReplicaView {
	t.mu.Lock()
	if t.master != master.Name {
		t.master = master.Name
		t.last = map[string]replicaSample{}
		t.views = map[string]ReplicaView{}
	}
	t.mu.Unlock()
	var servers []*config.Server
	for _, s := range app.Servers {
		if s.Name != master.Name {
			servers = append(servers, s)
		}
	}
	out := make([]ReplicaView, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = t.sampleOne(ctx, s, master)
		}()
	}
	wg.Wait()
	return out
}

func (t *replicaTracker) sampleOne(ctx context.Context, s, master *config.Server) ReplicaView {
	rows, err := t.status(ctx, s)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		v := ReplicaView{Server: s.Name, Error: err.Error(), SampledAt: now, Heartbeats: -1}
		delete(t.last, s.Name)
		t.views[s.Name] = v
		return v
	}
	cur := parseReplicaStatus(s.Name, rows, master)
	cur.view.SampledAt = now
	prev, seen := t.last[s.Name]
	track(&cur, prev, seen)
	t.last[s.Name] = cur
	t.views[s.Name] = cur.view
	return cur.view
}

// track dates cur's progress (TrackedSince, LastProgress) against prev,
// the replica's previous successful sample (seen false when there is none).
func track(cur *replicaSample, prev replicaSample, seen bool) {
	now := cur.view.SampledAt
	switch {
	case !seen || now.Sub(prev.view.SampledAt) > TrackGap:
		cur.view.TrackedSince, cur.view.LastProgress = now, now
	case prev.progress != cur.progress:
		cur.view.TrackedSince, cur.view.LastProgress = prev.view.TrackedSince, now
	default:
		cur.view.TrackedSince, cur.view.LastProgress = prev.view.TrackedSince, prev.view.LastProgress
	}
}

// status runs the first status query the server understands.
func (t *replicaTracker) status(ctx context.Context, s *config.Server) ([]map[string]string, error) {
	db, err := t.db(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	t.mu.Lock()
	first := t.query[s.Name]
	t.mu.Unlock()
	var lastErr error
	for i := first; i < len(statusQueries); i++ {
		rows, err := queryMaps(ctx, db, statusQueries[i])
		if err == nil {
			t.mu.Lock()
			t.query[s.Name] = i
			t.mu.Unlock()
			return rows, nil
		}
		lastErr = fmt.Errorf("%s on %s: %w", statusQueries[i], s.Name, err)
		if k, _ := Classify(err); k != KindServerError {
			break // not a syntax problem: the next query would fail the same way
		}
	}
	return nil, lastErr
}

func (t *replicaTracker) db(s *config.Server) (*sql.DB, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if db := t.dbs[s.Name]; db != nil {
		return db, nil
	}
	db, err := openDB(s, t.timeout)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	t.dbs[s.Name] = db
	return db, nil
}

// latest returns the last views without I/O.
func (t *replicaTracker) latest(app *config.App, master *config.Server) []ReplicaView {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ReplicaView
	if t.master != master.Name {
		return nil
	}
	for _, s := range app.Servers {
		if v, ok := t.views[s.Name]; ok && s.Name != master.Name {
			out = append(out, v)
		}
	}
	return out
}

func (t *replicaTracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, db := range t.dbs {
		db.Close()
	}
	t.dbs = map[string]*sql.DB{}
}

// queryMaps runs q and returns every row as column -> value.
func queryMaps(ctx context.Context, db *sql.DB, q string) ([]map[string]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return dialect.ScanRows(rows)
}
