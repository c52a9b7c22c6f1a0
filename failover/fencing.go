package failover

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/binlog"
	"github.com/mharaft/mharaft/config"
)

// Guard says whether this run may still act. The manager implements it
// (leadership context alive, raft VerifyLeader, same term as when the lock
// was taken, the FSM's lock epoch and holder still ours); nil (mhactl
// --local) skips the check but not the fencing. See doc.go, "Fencing".
type Guard interface {
	MayAct(ctx context.Context) error
}

// fenceSlots is how many advisory-lock slots an application has on each
// server: one per open fenced connection of every actor, so far more than
// a run opens (its pools are capped at maxPoolConns per server, plus the
// log applies) plus what earlier actors may still hold.
const fenceSlots = 64

// maxPoolConns caps every fenced pool (each connection holds a slot).
const maxPoolConns = 8

// errFenceFailed: a connection could not be fenced (no free slot, an
// earlier actor's connection did not end). The server answered.
var errFenceFailed = errors.New("could not fence the connection")

// slotName is the advisory lock name of slot i of app: "mharaft.<app>.<i>",
// or with the app's name hashed when that would exceed the 64 characters
// a lock name may have.
func slotName(app string, i int) string {
	name := fmt.Sprintf("mharaft.%s.%d", app, i)
	if len(name) > 64 {
		h := sha256.Sum256([]byte(app))
		name = fmt.Sprintf("mharaft.%s.%d", hex.EncodeToString(h[:16]), i)
	}
	return name
}

// fencing fences the connections of one run (see doc.go): it knows the
// run's own connection ids per server, so that it never kills its own.
type fencing struct {
	app   string
	run   string // this run's tag, in a comment of each connection's first statement
	guard Guard
	wait  time.Duration // bound on waiting for a killed connection to end
	// query bounds each statement of the fence: a server that answered
	// the handshake and then stopped answering (paused) must not hold
	// the run for the driver's read timeout.
	query time.Duration
	logf  func(format string, args ...any)

	mu  sync.Mutex
	own map[string]map[string]bool // server address -> own connection ids
}

// newFencing: connectTimeout (<= 0: 2 s) plus 3 s bounds each statement
// of a fence, wait (<= 0: 1 minute) the wait for a killed connection.
func newFencing(app string, guard Guard, wait, connectTimeout time.Duration, logf func(string, ...any)) *fencing {
	if wait <= 0 {
		wait = time.Minute
	}
	if connectTimeout <= 0 {
		connectTimeout = 2 * time.Second
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &fencing{app: app, run: newRunTag(), guard: guard, wait: wait, query: connectTimeout + 3*time.Second, logf: logf,
		own: map[string]map[string]bool{}}
}

// newRunTag is a random tag that names one run of a pipeline in the
// servers' logs: every fenced connection's first statement carries it as
// the comment "/* mharaft run <tag> */", so a general log or a processlist
// tells the connections of two runs apart, also two runs of one manager.
func newRunTag() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 16)
	}
	return hex.EncodeToString(b[:])
}

// boundedSession bounds every statement of s by d.
type boundedSession struct {
	s session
	d time.Duration
}

func (b boundedSession) QueryRow(ctx context.Context, query string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.QueryRow(ctx, query)
}

// mayAct calls the guard (nil: always allowed); its refusal wraps ErrMayNotAct.
func (f *fencing) mayAct(ctx context.Context, what string) error {
	if f == nil || f.guard == nil {
		return nil
	}
	if err := f.guard.MayAct(ctx); err != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrMayNotAct, err)
	}
	return nil
}

func (f *fencing) addOwn(addr, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.own[addr] == nil {
		f.own[addr] = map[string]bool{}
	}
	f.own[addr][id] = true
}

func (f *fencing) isOwn(addr, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.own[addr][id]
}

// session is a connection as the fencing sees it.
type session interface {
	QueryRow(ctx context.Context, query string) ([]string, error)
}

// fence makes a new connection to server (name for messages, addr its
// host:port) a fenced one before anything else runs on it:
//
//	a) it takes a free slot: GET_LOCK(slot, 0), its id registered as the
//	   run's own before (so that a concurrent connection of this run never
//	   takes it for a foreign one);
//	b) Guard.MayAct: this run may still act;
//	c) every slot held by a connection that is not this run's is killed
//	   (KILL CONNECTION), and the holder waited for until its lock is
//	   released, which happens only when its thread ends (after the
//	   rollback of whatever it had open).
func (f *fencing) fence(ctx context.Context, name, addr string, s session) error {
	s = boundedSession{s, f.query}
	names := make([]string, fenceSlots)
	used := make([]string, fenceSlots)
	for i := range names {
		names[i] = slotName(f.app, i)
		used[i] = "IS_USED_LOCK('" + names[i] + "')"
	}
	row, err := s.QueryRow(ctx, "SELECT /* mharaft run "+f.run+" */ CONNECTION_ID(), "+strings.Join(used, ", "))
	if err != nil || len(row) != fenceSlots+1 {
		return fmt.Errorf("fence a connection to %s: read the advisory lock slots: %w", name, errOr(err, "no row"))
	}
	myID := row[0]
	f.addOwn(addr, myID)
	slot := -1
	for i, holder := range row[1:] {
		if holder != "" {
			continue
		}
		got, err := s.QueryRow(ctx, "SELECT GET_LOCK('"+names[i]+"', 0)")
		if err != nil {
			return fmt.Errorf("fence a connection to %s: GET_LOCK('%s', 0): %w", name, names[i], err)
		}
		if len(got) == 1 && got[0] == "1" {
			slot = i
			break
		}
	}
	if slot < 0 {
		return fmt.Errorf("fence a connection to %s: %w: all %d advisory lock slots %s are held (connection ids %s); "+
			"close the connections of other managers of %s on it, or find who holds them with SELECT IS_USED_LOCK(...)",
			name, errFenceFailed, fenceSlots, slotName(f.app, 0), strings.Join(row[1:], ","), f.app)
	}
	if err := f.mayAct(ctx, "fence a connection to "+name); err != nil {
		return err
	}
	row, err = s.QueryRow(ctx, "SELECT "+strings.Join(used, ", "))
	if err != nil || len(row) != fenceSlots {
		return fmt.Errorf("fence a connection to %s: read the advisory lock slots: %w", name, errOr(err, "no row"))
	}
	for j, holder := range row {
		if holder == "" || holder == myID || f.isOwn(addr, holder) {
			continue
		}
		t0 := time.Now()
		// An error (the thread has gone already, "Unknown thread id") is
		// decided by the wait below.
		_, killErr := s.QueryRow(ctx, "KILL CONNECTION "+holder)
		if err := f.waitEnded(ctx, s, names[j], holder); err != nil {
			if killErr != nil {
				err = fmt.Errorf("%w (KILL CONNECTION %s: %v)", err, holder, killErr)
			}
			return fmt.Errorf("fence a connection to %s: %w", name, err)
		}
		// Keep the slot (best effort): one less for a stale actor.
		s.QueryRow(ctx, "SELECT GET_LOCK('"+names[j]+"', 0)")
		f.logf("Fenced %s: killed connection %s of an earlier actor of %s (slot %s); it ended after %.3f s.",
			name, holder, f.app, names[j], time.Since(t0).Seconds())
	}
	return nil
}

// waitEnded waits until lock is no longer held by connection id: a user
// lock is released only when its thread ends, after the rollback of its
// open transaction, so this proves that nothing of it still runs.
func (f *fencing) waitEnded(ctx context.Context, s session, lock, id string) error {
	deadline := time.Now().Add(f.wait)
	for {
		row, err := s.QueryRow(ctx, "SELECT IS_USED_LOCK('"+lock+"')")
		if err != nil {
			return fmt.Errorf("wait for the killed connection %s to end: %w", id, err)
		}
		if len(row) != 1 || row[0] != id {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: connection %s of an earlier actor, killed, still holds %s after %s (still rolling back?); "+
				"retry when it has ended (SHOW PROCESSLIST)", errFenceFailed, id, lock, f.wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// driverSession is a go-sql-driver connection as a session.
type driverSession struct{ c driver.Conn }

func (s driverSession) QueryRow(ctx context.Context, query string) ([]string, error) {
	qc, ok := s.c.(driver.QueryerContext)
	if !ok {
		return nil, errors.New("the driver connection cannot run queries")
	}
	rows, err := qc.QueryContext(ctx, query, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := rows.Columns()
	if len(cols) == 0 {
		return nil, nil
	}
	dest := make([]driver.Value, len(cols))
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	out := make([]string, len(dest))
	for i, v := range dest {
		switch v := v.(type) {
		case nil:
		case []byte:
			out[i] = string(v)
		case string:
			out[i] = v
		case int64:
			out[i] = strconv.FormatInt(v, 10)
		case uint64:
			out[i] = strconv.FormatUint(v, 10)
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// connector opens connections to one server for a pool: the handshake
// bounded by timeout, then (with a fencing) the fence, before the pool
// hands the connection to anyone.
type connector struct {
	base    driver.Connector
	srv     *config.Server
	timeout time.Duration
	f       *fencing
}

func newConnector(s *config.Server, cfg *mysql.Config, timeout time.Duration, f *fencing) (*connector, error) {
	base, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connection settings of %s: %w", s, err)
	}
	return &connector{base: base, srv: s, timeout: timeout, f: f}, nil
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	// A server that accepts the TCP connection but does not answer
	// (paused, overloaded, half cut off) counts as unreachable after
	// timeout, not after the caller's longer deadline.
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	dc, err := c.base.Connect(hctx)
	cancel()
	if err != nil {
		return nil, err
	}
	if c.f == nil {
		return dc, nil
	}
	if err := c.f.fence(ctx, c.srv.String(), c.srv.Addr(), driverSession{dc}); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

func (c *connector) Driver() driver.Driver { return c.base.Driver() }

// applyTarget is s as binlog.Apply reaches it: as the manager user, its
// connections fenced by f (nil: not fenced).
func applyTarget(s *config.Server, f *fencing) binlog.Target {
	t := binlog.Target{Name: s.String(), Addr: s.Addr(), User: s.User, Password: s.Password}
	t.OnConnect = f.connectHook(s)
	return t
}

// connectHook is what fences a connection binlog opens to s (nil when f
// is nil: not fenced).
func (f *fencing) connectHook(s *config.Server) func(context.Context, binlog.Session) error {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, sess binlog.Session) error {
		return f.fence(ctx, s.String(), s.Addr(), sess)
	}
}
