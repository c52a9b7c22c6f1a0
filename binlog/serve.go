package binlog

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// ServedServerID is the server_id the event server gives itself (the
// target shows it as Master_Server_Id while it applies). The events keep
// their own server_ids.
const ServedServerID = 4294967000

// eventServer is a minimal MySQL master that serves one servedStream to
// one replica: the handshake (go-mysql's server package) with a one-time
// user and password, the few queries a MariaDB replica's IO thread sends
// before it asks for events, COM_REGISTER_SLAVE, and COM_BINLOG_DUMP from
// any event boundary of the served file, then heartbeats until it is
// closed. It listens only while one Apply runs.
type eventServer struct {
	ln       net.Listener
	stream   *servedStream
	conf     *server.Server
	user     string
	password string // never logged

	done   chan struct{} // closed by Close
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	events []string // what happened, for errors: connections, refusals, unknown queries
	wg     sync.WaitGroup
}

// startEventServer listens on addr (host:port, port 0 for any) and serves
// st. version is the server version it announces (the target's own).
func startEventServer(addr string, st *servedStream, version string) (*eventServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for the target's replication connection: %w", addr, err)
	}
	s := &eventServer{
		ln:       ln,
		stream:   st,
		user:     "mharaft_apply_" + randomHex(4),
		password: randomHex(16),
		conns:    map[net.Conn]bool{},
		done:     make(chan struct{}),
	}
	// A MariaDB replica reads the version to pick the binlog format; a
	// MariaDB 10+ master announces itself as 5.5.5-<version>.
	if !strings.HasPrefix(version, "5.5.5-") && strings.Contains(version, "MariaDB") {
		version = "5.5.5-" + version
	}
	s.conf = server.NewServer(version, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil)
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Addr is the address the target must connect to.
func (s *eventServer) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// note records what happened (kept for errors; the last 20 entries).
func (s *eventServer) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf(format, args...))
	if len(s.events) > 20 {
		s.events = s.events[len(s.events)-20:]
	}
}

// history is what happened so far, for an error message.
func (s *eventServer) history() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return "no connection came"
	}
	return strings.Join(s.events, "; ")
}

// Close stops listening, closes every connection and waits for them.
func (s *eventServer) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *eventServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *eventServer) serveConn(c net.Conn) {
	p := server.NewInMemoryProvider()
	p.AddUser(s.user, s.password)
	h := &dumpHandler{srv: s, heartbeat: time.Second}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := s.conf.NewCustomizedConn(c, p, h)
	if err != nil {
		s.note("connection from %s refused: %v", c.RemoteAddr(), err)
		return
	}
	c.SetDeadline(time.Time{})
	s.note("connection from %s", c.RemoteAddr())
	h.conn = conn
	for !conn.Closed() {
		if err := conn.HandleCommand(); err != nil {
			if h.dumpErr != nil {
				s.note("dump to %s ended: %v", c.RemoteAddr(), h.dumpErr)
			}
			return
		}
	}
}

// dumpHandler answers one replica connection.
type dumpHandler struct {
	server.EmptyHandler
	srv       *eventServer
	conn      *server.Conn
	heartbeat time.Duration
	dumpErr   error
}

// HandleQuery answers what a MariaDB IO thread asks before a dump (see
// get_master_version_and_clock in MariaDB's slave.cc): SETs of user
// variables are acknowledged, a few SELECTs answered; anything else is an
// error the replica reports (and we note).
func (h *dumpHandler) HandleQuery(q string) (*mysql.Result, error) {
	lq := strings.ToLower(strings.TrimSpace(q))
	one := func(name string, v any) (*mysql.Result, error) {
		rs, err := mysql.BuildSimpleTextResultset([]string{name}, [][]any{{v}})
		if err != nil {
			return nil, err
		}
		return mysql.NewResult(rs), nil
	}
	switch {
	case strings.HasPrefix(lq, "set @master_heartbeat_period"):
		if i := strings.IndexByte(lq, '='); i > 0 {
			if ns, err := strconv.ParseFloat(strings.TrimSpace(lq[i+1:]), 64); err == nil && ns > 0 {
				h.heartbeat = min(time.Duration(ns), 30*time.Second)
			}
		}
		return nil, nil
	case strings.HasPrefix(lq, "set "):
		return nil, nil
	case lq == "select unix_timestamp()":
		return one("UNIX_TIMESTAMP()", time.Now().Unix())
	case lq == "show variables like 'server_id'":
		rs, err := mysql.BuildSimpleTextResultset([]string{"Variable_name", "Value"}, [][]any{{"server_id", ServedServerID}})
		if err != nil {
			return nil, err
		}
		return mysql.NewResult(rs), nil
	case lq == "select @master_binlog_checksum":
		if h.srv.stream.checksum {
			return one("@master_binlog_checksum", "CRC32")
		}
		return one("@master_binlog_checksum", "NONE")
	case lq == "select @@global.gtid_domain_id":
		return one("@@GLOBAL.gtid_domain_id", 0)
	}
	h.srv.note("query not answered: %q", q)
	return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "mharaft event server: query not supported: "+q)
}

// HandleOtherCommand takes COM_REGISTER_SLAVE and COM_BINLOG_DUMP. A dump
// streams the served events and then heartbeats on this connection until
// the replica or the server closes it, so it returns only with an error.
func (h *dumpHandler) HandleOtherCommand(cmd byte, data []byte) error {
	switch cmd {
	case mysql.COM_REGISTER_SLAVE:
		return nil
	case mysql.COM_BINLOG_DUMP:
		if len(data) < 10 {
			return mysql.ErrMalformPacket
		}
		pos := binary.LittleEndian.Uint32(data[0:4])
		file := string(data[10:])
		if file != servedFile && !(file == "" && pos <= 4) {
			return mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, fmt.Sprintf("mharaft event server serves only %s, not %q", servedFile, file))
		}
		h.srv.note("dump from %s:%d", servedFile, pos)
		h.dumpErr = h.dump(max(pos, 4))
		return h.dumpErr
	}
	h.srv.note("command %d not supported", cmd)
	return mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, fmt.Sprintf("mharaft event server: command %d not supported", cmd))
}

// dump writes the events from pos on, then heartbeats.
func (h *dumpHandler) dump(pos uint32) error {
	st := h.srv.stream
	if pos > st.end {
		return mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, fmt.Sprintf("position %d is beyond the end of %s (%d)", pos, servedFile, st.end))
	}
	var pkt []byte
	send := func(ev []byte) error {
		pkt = append(append(pkt[:0], 0, 0, 0, 0, mysql.OK_HEADER), ev...)
		return h.conn.WritePacket(pkt)
	}
	if err := send(st.rotateEvent(ServedServerID, pos)); err != nil {
		return err
	}
	if err := send(st.fdeEvent(pos)); err != nil {
		return err
	}
	if err := st.replay(pos, send); err != nil {
		return err
	}
	t := time.NewTicker(h.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-h.srv.done:
			return errors.New("event server closed")
		case <-t.C:
			if err := send(st.heartbeatEvent(ServedServerID, st.end)); err != nil {
				return err
			}
		}
	}
}
