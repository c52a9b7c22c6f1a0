package api

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Defaults of Limits: what one manager's HTTP listener (API, /metrics and
// the managers' forwarding endpoint) tolerates from a client.
const (
	// DefaultReadHeaderTimeout bounds the request line and headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the whole request, body included (a
	// forwarded command is at most 4 MB: well under a second on a LAN).
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds a response, from the end of the headers.
	// An authenticated action (failover, switch) extends it to
	// ActionTimeout plus a minute for its own response, once its token is
	// checked.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout closes a kept-alive connection with no request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxConns is how many connections are served at once; more
	// wait in the kernel's accept queue until one closes (every one closes
	// within the timeouts above unless it carries the token).
	DefaultMaxConns = 256
	// DefaultMaxHeaderBytes bounds the request line and headers.
	DefaultMaxHeaderBytes = 64 << 10
	// MaxRequestBytes is the largest body any endpoint accepts (the
	// forwarding endpoint's 4 MB command, plus room); a larger declared
	// Content-Length is refused with 413 before the token is looked at,
	// and a body that turns out larger is cut there.
	MaxRequestBytes = 4<<20 + 64<<10
)

// Limits are the timeouts and bounds of NewHTTPServer and LimitListener;
// a zero field takes its default.
type Limits struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxConns                                                  int
	MaxBodyBytes                                              int64 // MaxRequestBytes when 0
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = MaxRequestBytes
	}
	return l
}

// NewHTTPServer is the http.Server of a manager's listener: h behind a
// body limit (a declared Content-Length over lim.MaxBodyBytes is refused
// with 413 before any handler, so before the token check), with the
// timeouts of lim. Serve it on LimitListener(ln, lim).
func NewHTTPServer(h http.Handler, lim Limits, logger *slog.Logger) *http.Server {
	lim = lim.withDefaults()
	srv := &http.Server{
		Handler:           limitBody(h, lim.MaxBodyBytes),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
	if logger != nil {
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// LimitListener serves at most lim.MaxConns connections of ln at once.
func LimitListener(ln net.Listener, lim Limits) net.Listener {
	return netutil.LimitListener(ln, lim.withDefaults().MaxConns)
}

// limitBody refuses a declared body larger than max before h runs, and
// cuts a body that grows past it. When h answers without reading the whole
// body (a refusal: wrong token, unknown path), the server is told not to
// wait for the rest: a client that declared a large body and sends it a
// byte at a time must not hold the connection (the connection is closed
// after the answer instead of being kept alive).
func limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			refuseBody(w, r)
			writeError(w, Errorf(http.StatusRequestEntityTooLarge, "",
				"request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, max))
			return
		}
		body := &eofReader{r: http.MaxBytesReader(w, r.Body, max)}
		r.Body = body
		h.ServeHTTP(w, r)
		if r.ContentLength != 0 && !body.eof {
			// Errors: the connection may not support deadlines (recorders).
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
	})
}

// eofReader remembers whether its reader reached its end.
type eofReader struct {
	r   io.ReadCloser
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

func (e *eofReader) Close() error { return e.r.Close() }

// refuseBody prepares the refusal of a request whose body will not be
// read: the connection closes after the answer and the server does not
// wait for the rest of the body.
func refuseBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	// Errors: the connection may not support deadlines (recorders).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// extendDeadlines lets an authenticated request that runs for long (an
// action, a forwarded action) answer after d: the server's write timeout
// would otherwise cut its response, and its read timeout cancel it.
func extendDeadlines(w http.ResponseWriter, d time.Duration) error {
	rc := http.NewResponseController(w)
	until := time.Now().Add(d)
	if err := rc.SetWriteDeadline(until); err != nil {
		return fmt.Errorf("extend the write deadline: %w", err)
	}
	if err := rc.SetReadDeadline(until); err != nil {
		return fmt.Errorf("extend the read deadline: %w", err)
	}
	return nil
}
