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
	DC      string    `json:"dc,omitempty"`    // the client's datacenter (rounds with a layout)
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
	if err != nil || st.Node != st.Leader {
		// Unreachable, or not (or no longer) the leader: a manager cut
		// from the others answers from its own stale state.
		st, err = o.API().Status(cctx)
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

// API returns a client that picks the current Raft leader afresh (the
// observer's Client remembers the node it picked first, which, cut from
// the other managers, keeps answering from its stale state).
func (o *Observer) API() *api.Client {
	return &api.Client{Addrs: o.Client.Addrs, Token: o.Client.Token, HTTP: o.Client.HTTP, ProbeTimeout: o.Client.ProbeTimeout}
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
// write on every server every 50 ms. In a round with datacenters, every
// datacenter with DB hosts has its own clients (dcClients): two writers
// (jepsen.w and jepsen.nk) that dial from the datacenter's client address
// and write to the master named by a manager they reach.
type Workload struct {
	env     *Env
	obs     *Observer
	nextID  *atomic.Int64
	writers int
	dcs     []*dcClients

	mu     sync.Mutex
	writes []Op
	probes []Op
	pools  map[string]*sql.DB
}

// NewWorkload prepares a workload; ids come from next.
func NewWorkload(env *Env, obs *Observer, writers int, next *atomic.Int64) *Workload {
	w := &Workload{env: env, obs: obs, writers: writers, nextID: next, pools: map[string]*sql.DB{}}
	if l := env.Layout(); l != nil {
		for _, dc := range l.ClientDCs() {
			w.dcs = append(w.dcs, newDCClients(env, dc, l.Addr[dc], obs.Master()))
		}
	}
	return w
}

// WritersPerDC is the number of writers of each datacenter's clients.
const WritersPerDC = 2

// pool is the connection pool to d of the prober (probe), of the
// harness's own writers (dc nil) or of a datacenter's clients.
func (w *Workload) pool(d *DBHost, probe bool, dc *dcClients) *sql.DB {
	key := d.Name()
	if probe {
		key += "/probe"
	}
	netw := "tcp"
	if dc != nil {
		key += "/" + dc.dc
		netw = dc.netName
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if db := w.pools[key]; db != nil {
		return db
	}
	dsn := fmt.Sprintf("%s:%s@%s(%s)/jepsen?timeout=1s&readTimeout=2s&writeTimeout=2s", testbed.AppUser, testbed.AppPassword, netw, d.Addr())
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
	if len(w.dcs) == 0 {
		for i := 0; i < w.writers; i++ {
			wg.Add(1)
			go func(writer int) { defer wg.Done(); w.writer(ctx, writer, nil) }(i)
		}
	}
	for i, dc := range w.dcs {
		wg.Add(1)
		go func(dc *dcClients) { defer wg.Done(); dc.run(ctx) }(dc)
		for k := 0; k < WritersPerDC; k++ {
			wg.Add(1)
			go func(writer int, dc *dcClients) { defer wg.Done(); w.writer(ctx, writer, dc) }(i*WritersPerDC+k, dc)
		}
	}
	for _, d := range w.env.DBs {
		wg.Add(1)
		go func(d *DBHost) { defer wg.Done(); w.prober(ctx, d) }(d)
	}
	wg.Wait()
}

// writer writes until ctx ends; dc nil: from the harness's address to
// the master the observer sees.
func (w *Workload) writer(ctx context.Context, writer int, dc *dcClients) {
	master := w.obs.Master
	if dc != nil {
		master = dc.Master
	}
	for ctx.Err() == nil {
		name := master()
		dcName := ""
		if dc != nil {
			dcName = dc.dc
		}
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
		op := Op{ID: id, Table: table, Server: name, DC: dcName, Start: time.Now()}
		wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		stop := abandonOnReroute(wctx, cancel, name, master)
		_, err := w.pool(d, false, dc).ExecContext(wctx, stmt, id, writer)
		stop()
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

// abandonOnReroute cancels a write in flight to server once master()
// names another server, as a client whose router (HAProxy's
// on-marked-down shutdown-sessions, ProxySQL, a driver told of the
// failover) closes its connections to the old master: a write hanging on
// a cut-off master is abandoned, its outcome unknown, instead of waiting
// for the read timeout before the client tries the new one. It checks
// every 10 ms; stop ends the watch.
func abandonOnReroute(ctx context.Context, cancel context.CancelFunc, server string, master func() string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if m := master(); m != "" && m != server {
					cancel()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func (w *Workload) prober(ctx context.Context, d *DBHost) {
	for ctx.Err() == nil {
		id := w.nextID.Add(1)
		op := Op{ID: id, Server: d.Name(), Start: time.Now()}
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := w.pool(d, true, nil).ExecContext(wctx, "INSERT INTO jepsen.probe (id, srv) VALUES (?, ?)", id, d.Name())
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

// dcClients are one datacenter's application clients: every connection
// (MySQL and API) leaves from the datacenter's client address, so a
// partition that cuts the datacenter cuts them with it. They write to the
// master named by the Raft leader when they reach it, else by any manager
// they reach, else to the last master they knew (as an application behind
// a fixed address would).
type dcClients struct {
	env     *Env
	dc, ip  string
	netName string                 // go-sql-driver network registered for ip
	apis    map[string]*api.Client // per manager ID, dialling from ip

	mu     sync.Mutex
	master string
}

func newDCClients(env *Env, dc, ip, master string) *dcClients {
	c := &dcClients{env: env, dc: dc, ip: ip, netName: "mhj-" + ip, apis: map[string]*api.Client{}, master: master}
	local := &net.TCPAddr{IP: net.ParseIP(ip)}
	mysql.RegisterDialContext(c.netName, func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: local}
		return d.DialContext(ctx, "tcp", addr)
	})
	for _, m := range env.Managers {
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: local, Timeout: 500 * time.Millisecond}).DialContext}
		c.apis[m.ID] = &api.Client{Addrs: []string{m.APIAddr()}, Token: env.token,
			HTTP: &http.Client{Timeout: 800 * time.Millisecond, Transport: tr}, ProbeTimeout: 500 * time.Millisecond}
	}
	return c
}

// Master is the server these clients write to.
func (c *dcClients) Master() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.master
}

// run asks every manager, every 100 ms, which server is master.
func (c *dcClients) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.pollOnce(ctx)
		pause(ctx, 100*time.Millisecond)
	}
	for _, a := range c.apis {
		if a.HTTP != nil {
			a.HTTP.CloseIdleConnections()
		}
	}
}

func (c *dcClients) pollOnce(ctx context.Context) {
	// Every manager is asked at once; the Raft leader's answer is taken
	// as soon as it comes (a client does not wait for a manager cut off
	// by the partition to time out), else the first other answer once
	// every manager answered or failed.
	type answer struct {
		leader bool
		master string
	}
	answers := make(chan answer, len(c.apis))
	for id, a := range c.apis {
		go func(id string, a *api.Client) {
			cctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
			defer cancel()
			st, err := a.Status(cctx)
			if err != nil {
				answers <- answer{}
				return
			}
			for _, app := range st.Apps {
				if d := c.env.DBByAddr(app.Master); app.Name == "app1" && d != nil {
					answers <- answer{leader: st.Leader == id && st.Node == id, master: d.Name()}
					return
				}
			}
			answers <- answer{}
		}(id, a)
	}
	pick := ""
	for range c.apis {
		a := <-answers
		if a.leader {
			pick = a.master
			break
		}
		if pick == "" {
			pick = a.master
		}
	}
	if pick == "" {
		return // nobody reachable: keep the last master known
	}
	c.mu.Lock()
	c.master = pick
	c.mu.Unlock()
}
