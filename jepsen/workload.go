package jepsen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/testbed"
)

func dialTCP(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

// Outcome of one write.
type Outcome string

const (
	Ack     Outcome = "ack"     // the server said OK
	Fail    Outcome = "fail"    // definitely not applied: refused by the server, or never sent
	Unknown Outcome = "unknown" // sent, no answer (timeout, connection lost)
)

// Op is one write of the workload or of the prober.
type Op struct {
	ID      int64     `json:"id"`
	Table   string    `json:"table,omitempty"` // "w" (primary key id) or "nk" (no key: value v)
	Server  string    `json:"server"`          // server name (server1)
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome Outcome   `json:"outcome"`
	Err     string    `json:"err,omitempty"`
}

// classify maps a write's error to its outcome: a MySQL error packet or
// a failed dial means the write was not applied; anything else after the
// request may have gone out is unknown.
func classify(err error) Outcome {
	if err == nil {
		return Ack
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return Fail
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return Fail
	}
	return Unknown
}

// Observer polls the cluster's API and remembers which server it names
// master, and what the journal said, with times.
type Observer struct {
	Client *api.Client
	App    string
	env    *Env

	mu         sync.Mutex
	master     string // server name the API names master now
	journal    map[string]bool
	events     []Event
	leader     string
	lockSeen   bool
	lockHolder string
	lockHeld   bool
	started    map[string]time.Time // journal phase -> when a "started" entry for it was first seen
	verdict    string
	byNode     map[string]*api.Client
}

// Event is one dated thing on a round's timeline.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // fault, heal, verdict, lock, phase, master, stonith, leader, failover-start, failover-end
	Detail string    `json:"detail,omitempty"`
}

// NewObserver makes an observer of env's API.
func NewObserver(env *Env) *Observer {
	var addrs []string
	byNode := map[string]*api.Client{}
	for _, m := range env.Managers {
		addrs = append(addrs, m.APIAddr())
		byNode[m.ID] = &api.Client{Addrs: []string{m.APIAddr()}, Token: env.token,
			HTTP: &http.Client{Timeout: 1500 * time.Millisecond}, ProbeTimeout: 500 * time.Millisecond}
	}
	return &Observer{byNode: byNode,
		Client: &api.Client{Addrs: addrs, Token: env.token, HTTP: &http.Client{Timeout: 1500 * time.Millisecond},
			ProbeTimeout: 500 * time.Millisecond},
		App: "app1", env: env, journal: map[string]bool{}, started: map[string]time.Time{},
	}
}

// Run polls every 100 ms until ctx ends.
func (o *Observer) Run(ctx context.Context) {
	for ctx.Err() == nil {
		o.pollOnce(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (o *Observer) pollOnce(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	// Ask the Raft leader: only it evaluates verdicts.
	o.mu.Lock()
	c := o.byNode[o.leader]
	o.mu.Unlock()
	if c == nil {
		c = o.Client
	}
	st, err := c.Status(cctx)
	if err != nil && c != o.Client {
		st, err = o.Client.Status(cctx)
	}
	if err != nil {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if st.Leader != "" && st.Leader != o.leader {
		o.leader = st.Leader
		o.events = append(o.events, Event{At: now, Kind: "leader", Detail: st.Leader})
	}
	for _, a := range st.Apps {
		if a.Name != o.App {
			continue
		}
		name := ""
		if d := o.env.DBByAddr(a.Master); d != nil {
			name = d.Name()
		}
		if name != "" && name != o.master {
			if o.master != "" {
				o.events = append(o.events, Event{At: now, Kind: "master", Detail: o.master + " -> " + name})
			}
			o.master = name
		}
		o.verdict = a.Verdict
		o.lockHeld = a.Lock != nil
		if a.Lock != nil {
			o.lockHolder = a.Lock.Holder
		}
		if a.Lock != nil && !o.lockSeen {
			o.lockSeen = true
			o.events = append(o.events, Event{At: a.Lock.Started, Kind: "lock", Detail: fmt.Sprintf("epoch %d by %s", a.Lock.Epoch, a.Lock.Holder)})
		}
		for _, j := range a.Journal {
			key := fmt.Sprintf("%d/%s/%s", j.Epoch, j.Phase, j.Status)
			if o.journal[key] {
				continue
			}
			o.journal[key] = true
			if j.Status == "started" {
				if _, ok := o.started[j.Phase]; !ok {
					o.started[j.Phase] = now
				}
			}
			kind := "phase"
			if j.Phase == "verdict" || j.Phase == "0.verdict" {
				kind = "verdict"
			}
			o.events = append(o.events, Event{At: j.At, Kind: kind, Detail: fmt.Sprintf("epoch %d %s %s", j.Epoch, j.Phase, j.Status)})
		}
	}
}

// Master is the server the API named master at the last successful poll.
func (o *Observer) Master() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.master
}

// Leader is the last Raft leader the API named.
func (o *Observer) Leader() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.leader
}

// LockHolder is the manager that held the last lock seen.
func (o *Observer) LockHolder() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lockHolder
}

// Verdict is the application's verdict at the last poll.
func (o *Observer) Verdict() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.verdict
}

// LockHeld reports whether the last poll saw a failover lock.
func (o *Observer) LockHeld() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lockHeld
}

// PhaseStarted reports whether the journal showed a "started" entry of a
// phase whose name starts with prefix ("failover.3").
func (o *Observer) PhaseStarted(prefix string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p := range o.started {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// LockSeen reports whether a failover lock was observed.
func (o *Observer) LockSeen() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lockSeen
}

// Events returns what the observer saw.
func (o *Observer) Events() []Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Event(nil), o.events...)
}

// Workload writes uniquely numbered rows as the application user to
// whichever server the API names master, and, through the prober, tries a
// write on every server every 50 ms.
type Workload struct {
	env     *Env
	obs     *Observer
	nextID  *atomic.Int64
	writers int

	mu     sync.Mutex
	writes []Op
	probes []Op
	pools  map[string]*sql.DB
}

// NewWorkload prepares a workload; ids come from next.
func NewWorkload(env *Env, obs *Observer, writers int, next *atomic.Int64) *Workload {
	return &Workload{env: env, obs: obs, writers: writers, nextID: next, pools: map[string]*sql.DB{}}
}

func (w *Workload) pool(d *DBHost, probe bool) *sql.DB {
	key := d.Name()
	if probe {
		key += "/probe"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if db := w.pools[key]; db != nil {
		return db
	}
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/jepsen?timeout=1s&readTimeout=2s&writeTimeout=2s", testbed.AppUser, testbed.AppPassword, d.Addr())
	if probe {
		dsn = fmt.Sprintf("%s:%s@tcp(%s)/jepsen?timeout=300ms&readTimeout=500ms&writeTimeout=500ms", testbed.AppUser, testbed.AppPassword, d.Addr())
	}
	db, _ := sql.Open("mysql", dsn)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxLifetime(10 * time.Second)
	w.pools[key] = db
	return db
}

// Run writes until ctx ends.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < w.writers; i++ {
		wg.Add(1)
		go func(writer int) { defer wg.Done(); w.writer(ctx, writer) }(i)
	}
	for _, d := range w.env.DBs {
		wg.Add(1)
		go func(d *DBHost) { defer wg.Done(); w.prober(ctx, d) }(d)
	}
	wg.Wait()
}

func (w *Workload) writer(ctx context.Context, writer int) {
	for ctx.Err() == nil {
		name := w.obs.Master()
		d := w.env.DBByAddr(name)
		if d == nil {
			pause(ctx, 20*time.Millisecond)
			continue
		}
		id := w.nextID.Add(1)
		// Odd writers write the table without a key: a transaction
		// applied twice shows there as a value present twice.
		table, stmt := "w", "INSERT INTO jepsen.w (id, writer) VALUES (?, ?)"
		if writer%2 == 1 {
			table, stmt = "nk", "INSERT INTO jepsen.nk (v, writer) VALUES (?, ?)"
		}
		op := Op{ID: id, Table: table, Server: name, Start: time.Now()}
		wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := w.pool(d, false).ExecContext(wctx, stmt, id, writer)
		cancel()
		op.End, op.Outcome = time.Now(), classify(err)
		if err != nil {
			op.Err = err.Error()
		}
		w.mu.Lock()
		w.writes = append(w.writes, op)
		w.mu.Unlock()
		if err != nil {
			pause(ctx, 50*time.Millisecond)
		} else {
			pause(ctx, 10*time.Millisecond)
		}
	}
}

func (w *Workload) prober(ctx context.Context, d *DBHost) {
	for ctx.Err() == nil {
		id := w.nextID.Add(1)
		op := Op{ID: id, Server: d.Name(), Start: time.Now()}
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := w.pool(d, true).ExecContext(wctx, "INSERT INTO jepsen.probe (id, srv) VALUES (?, ?)", id, d.Name())
		cancel()
		op.End, op.Outcome = time.Now(), classify(err)
		if err == nil {
			w.mu.Lock()
			w.probes = append(w.probes, op)
			w.mu.Unlock()
		}
		pause(ctx, 50*time.Millisecond)
	}
}

// pause waits d or until ctx ends (pacing, not waiting for a condition).
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Writes and Probes return copies of what was recorded.
func (w *Workload) Writes() []Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Op(nil), w.writes...)
}

// Probes returns the successful probe writes.
func (w *Workload) Probes() []Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Op(nil), w.probes...)
}

// Close closes the connection pools.
func (w *Workload) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, db := range w.pools {
		db.Close()
	}
	w.pools = map[string]*sql.DB{}
}
