package testbed

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Writer is an application writing through one address (HAProxy's write
// frontend) as AppUser: one INSERT at a time into a table of its own,
// over one connection until it fails, then over a new one (retrying every
// WriterRetry), recording when each insert was acknowledged and by which
// server (its @@port, read once per connection). It measures what a
// client sees of a failover.
type Writer struct {
	addr, table string
	db          *sql.DB
	cancel      context.CancelFunc
	done        chan struct{}

	mu     sync.Mutex
	acks   []Ack
	errs   int
	last   error
	notify chan struct{} // closed and replaced at every ack
}

// Ack is one acknowledged insert.
type Ack struct {
	N    int       // the row's value
	Sent time.Time // when the INSERT was sent
	At   time.Time // when the server's OK arrived
	Port int       // @@port of the server that acknowledged it
}

// WriterRetry is the pause after a failed connect or insert.
const WriterRetry = 20 * time.Millisecond

// StartWriter creates db.table (a INT PRIMARY KEY) through addr (so addr
// must lead to a writable master at once) and starts writing rows 1, 2, ...
func StartWriter(ctx context.Context, addr, db, table string) (*Writer, error) {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr, mc.DBName = AppUser, AppPassword, "tcp", addr, db
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	mc.InterpolateParams = true
	mc.Logger = &mysql.NopLogger{} // a connection cut by the kill is expected: the writer counts it
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("writer through %s: %w", addr, err)
	}
	h := sql.OpenDB(conn)
	h.SetMaxIdleConns(1)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.ExecContext(cctx, "CREATE TABLE IF NOT EXISTS "+db+"."+table+" (a INT PRIMARY KEY)"); err != nil {
		h.Close()
		return nil, fmt.Errorf("writer: create %s.%s through %s: %w", db, table, addr, err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	w := &Writer{addr: addr, table: db + "." + table, db: h, cancel: wcancel, done: make(chan struct{}), notify: make(chan struct{})}
	go w.run(wctx)
	return w, nil
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	n := 0
	for ctx.Err() == nil {
		conn, port, err := w.connect(ctx)
		if err != nil {
			w.failed(err)
			writerPause(ctx, WriterRetry)
			continue
		}
		for ctx.Err() == nil {
			n++ // a failed insert's value is never tried again: it may have committed
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			sent := time.Now()
			_, err := conn.ExecContext(ictx, "INSERT INTO "+w.table+" VALUES (?)", n)
			cancel()
			if err != nil {
				w.failed(err)
				break
			}
			w.acked(Ack{N: n, Sent: sent, At: time.Now(), Port: port})
		}
		conn.Close()
		writerPause(ctx, WriterRetry)
	}
}

// connect opens a new connection and reads the port of its server.
func (w *Writer) connect(ctx context.Context) (*sql.Conn, int, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := w.db.Conn(cctx)
	if err != nil {
		return nil, 0, err
	}
	var p string
	if err := conn.QueryRowContext(cctx, "SELECT @@port").Scan(&p); err != nil {
		conn.Close()
		return nil, 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("@@port %q: %w", p, err)
	}
	return conn, port, nil
}

func (w *Writer) acked(a Ack) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acks = append(w.acks, a)
	close(w.notify)
	w.notify = make(chan struct{})
}

func (w *Writer) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs++
	w.last = err
}

// Acks is every acknowledged insert so far, in order.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Errors is how many connects or inserts failed, and the last error.
func (w *Writer) Errors() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs, w.last
}

// WaitAck waits for the first acknowledged insert that was sent after
// after (and, when port is not 0, acknowledged by the server with that
// port). An insert sent before a kill can be acknowledged by the killed
// server a moment after the kill was ordered; counting it would measure
// an outage of zero.
func (w *Writer) WaitAck(ctx context.Context, after time.Time, port int) (Ack, error) {
	for {
		w.mu.Lock()
		for _, a := range w.acks {
			if a.Sent.After(after) && (port == 0 || a.Port == port) {
				w.mu.Unlock()
				return a, nil
			}
		}
		ch, errs, last := w.notify, w.errs, w.last
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Ack{}, fmt.Errorf("no write acknowledged through %s after %s: %w (%d failed attempts, the last: %v)",
				w.addr, after.Format("15:04:05.000"), ctx.Err(), errs, last)
		}
	}
}

// Stop ends the writes and closes the connections.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
	w.db.Close()
}

// writerPause waits d or until ctx ends.
func writerPause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
