package topology

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mharaft/mharaft/config"
)

// Pool keeps one long-lived connection per server for repeated discoveries
// (the leader discovers every application every few seconds): a discovery
// with a Pool reuses the connection the last one left open instead of
// connecting anew. Entries are keyed by the whole driver configuration
// (address, user, password, timeouts), so a connection is never shared
// between two sets of credentials. An entry is closed when a read through
// it fails (the next discovery connects anew), when Retain no longer names
// it (its server left the configuration) and by Close. A connection is
// also replaced once it is PoolLifetime old: a discovery logs in anew at
// least that often, so that a login the server stopped accepting (a
// rotated password, a dropped grant) shows in the status within
// PoolLifetime plus one discovery interval instead of never. A Pool is safe
// for concurrent use; its zero value is not: use NewPool.
type Pool struct {
	lifetime time.Duration

	mu      sync.Mutex
	entries map[string]*poolEntry // by DSN (holds the password: never log a key)
	closed  bool

	connects atomic.Int64 // connections opened since NewPool
}

type poolEntry struct {
	db   *sql.DB
	used time.Time
}

// PoolLifetime is how long a pooled connection is used before the next
// discovery replaces it with a new login.
const PoolLifetime = 20 * time.Second

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{entries: map[string]*poolEntry{}, lifetime: PoolLifetime} }

// PoolStats counts a pool's connections.
type PoolStats struct {
	Servers  int   // entries (servers with a pooled handle)
	Open     int   // connections open now
	Connects int64 // connections opened since NewPool
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PoolStats{Servers: len(p.entries), Connects: p.connects.Load()}
	for _, e := range p.entries {
		s.Open += e.db.Stats().OpenConnections
	}
	return s
}

// PoolKey is the key of srv's entry for discoveries with opts (defaults
// applied as DiscoverWith applies them for app). It holds the password:
// never log it.
func PoolKey(app *config.App, srv *config.Server, opts Options) string {
	opts = opts.withDefaults(app)
	return DSN(srv, opts.ConnectTimeout, opts.QueryTimeout)
}

// get returns the handle for dsn, creating it (without connecting).
func (p *Pool) get(dsn string) (*sql.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("discovery connection pool closed")
	}
	if e := p.entries[dsn]; e != nil {
		e.used = time.Now()
		return e.db, nil
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(countingConnector{Connector: c, n: &p.connects})
	db.SetMaxOpenConns(1) // a discovery reads one server sequentially
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(p.lifetime)
	p.entries[dsn] = &poolEntry{db: db, used: time.Now()}
	return db, nil
}

// drop closes dsn's entry after a failure: the next discovery connects anew.
func (p *Pool) drop(dsn string, db *sql.DB) {
	p.mu.Lock()
	e := p.entries[dsn]
	if e != nil && e.db == db {
		delete(p.entries, dsn)
	}
	p.mu.Unlock()
	db.Close()
}

// Retain closes every entry whose key is not in keep (servers that left
// the configuration). Keys come from PoolKey.
func (p *Pool) Retain(keep map[string]bool) {
	p.mu.Lock()
	var gone []*sql.DB
	for k, e := range p.entries {
		if !keep[k] {
			gone = append(gone, e.db)
			delete(p.entries, k)
		}
	}
	p.mu.Unlock()
	for _, db := range gone {
		db.Close()
	}
}

// CloseIdle closes every entry unused for longer than d.
func (p *Pool) CloseIdle(d time.Duration) {
	p.mu.Lock()
	var gone []*sql.DB
	for k, e := range p.entries {
		if time.Since(e.used) > d {
			gone = append(gone, e.db)
			delete(p.entries, k)
		}
	}
	p.mu.Unlock()
	for _, db := range gone {
		db.Close()
	}
}

// Reset closes every entry; the pool stays usable.
func (p *Pool) Reset() { p.Retain(nil) }

// Close closes every entry; later discoveries through the pool fail.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Reset()
}

// countingConnector counts the connections it opens.
type countingConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err == nil {
		c.n.Add(1)
	}
	return conn, err
}
