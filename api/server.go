package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mharaft/mharaft/consensus"
	"github.com/mharaft/mharaft/internal/secret"
)

// BuildVersion is the version GET /healthz reports and mhactl prints; set
// it at link time: -ldflags "-X github.com/mharaft/mharaft/api.BuildVersion=v1.2.3".
var BuildVersion = "dev"

// Headers of the API.
const (
	// HopsHeader counts how many times a request was forwarded between
	// managers; a request that would exceed ServerConfig.MaxHops is refused
	// with 508 instead of being forwarded again.
	HopsHeader = "X-Mharaft-Hops"
	// ForwardedHeader is set on an answer that a follower obtained from the
	// leader; its value is the leader's API address.
	ForwardedHeader = "X-Mharaft-Forwarded-To"
)

// Defaults of ServerConfig.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxHops       = 2
	DefaultActionTimeout = 30 * time.Minute
)

// ServerConfig configures NewHandler and Serve.
type ServerConfig struct {
	// Token is the bearer token every request but GET /healthz must carry.
	// When empty, the token is read from TokenFile (surrounding whitespace
	// trimmed). With neither, or an unreadable file, the handler refuses
	// every authenticated request with 500 (it fails closed).
	Token     string
	TokenFile string
	// AcceptTokens are accepted besides the token, during a rotation
	// (docs/SECURITY.md); clients are never sent them.
	AcceptTokens []string

	// TLSCert and TLSKey, both set, make Serve speak HTTPS. TLSCAFile is
	// the CA that verifies the leader's certificate when a follower
	// forwards an action (system roots when empty).
	TLSCert, TLSKey, TLSCAFile string

	// MetricsOpen serves GET /metrics without the token (for scrapers that
	// cannot send one). By default /metrics needs the token like /v1/*.
	MetricsOpen bool

	MaxBodyBytes  int64         // largest accepted request body; DefaultMaxBodyBytes when 0
	MaxHops       int           // forwarding hop limit; DefaultMaxHops when 0
	ActionTimeout time.Duration // bound of Backend.Do and of a forwarded action; DefaultActionTimeout when 0

	// ForwardClient sends forwarded actions to the leader; a client built
	// from TLSCAFile when nil.
	ForwardClient *http.Client
	Logger        *slog.Logger // discards when nil
}

// LoadToken returns the configured token: Token, else TokenFile's content
// (surrounding whitespace trimmed). A token file that group or others can
// access, or that holds fewer than 16 bytes, is refused (internal/secret).
// The daemon should call it at start and refuse to run without a token.
func (c ServerConfig) LoadToken() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if c.TokenFile == "" {
		return "", errors.New("no API token configured (set a token or a token file)")
	}
	return secret.Token(c.TokenFile)
}

func (c ServerConfig) tlsEnabled() bool { return c.TLSCert != "" && c.TLSKey != "" }

type handler struct {
	b        Backend
	cfg      ServerConfig
	tokenSum [sha256.Size]byte
	accepted [][sha256.Size]byte // sums of cfg.AcceptTokens
	tokenErr error
	mux      *http.ServeMux
	open     *http.ServeMux // the routing endpoints (routing.go): no token
	fwd      *http.Client
	log      *slog.Logger
}

// NewHandler returns the API of one manager. reg is served on GET
// /metrics (nil: 404). The token is read once, here.
//
// Routes: GET /healthz (no token), GET /v1/status, GET /v1/apps/{app},
// GET /v1/history?app=NAME, POST /v1/actions (body: Action), GET /metrics,
// and the routing endpoints GET /v1/apps/{app}/servers/{server}/primary
// and /replica (no token; routing.go).
func NewHandler(b Backend, cfg ServerConfig, reg *prometheus.Registry) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxHops <= 0 {
		cfg.MaxHops = DefaultMaxHops
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	h := &handler{b: b, cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	h.open = h.newRoutingMux()
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	tok, err := cfg.LoadToken()
	h.tokenErr = err
	h.tokenSum = sha256.Sum256([]byte(tok))
	for _, t := range cfg.AcceptTokens {
		h.accepted = append(h.accepted, sha256.Sum256([]byte(t)))
	}
	h.fwd = cfg.ForwardClient
	if h.fwd == nil {
		h.fwd, err = forwardClient(cfg)
		if err != nil {
			h.fwd = &http.Client{}
			h.tokenErr = errors.Join(h.tokenErr, err)
		}
	}

	routes := []struct {
		method, path string
		fn           http.HandlerFunc
	}{
		{"GET", "/healthz", h.health},
		{"GET", "/v1/status", h.status},
		{"GET", "/v1/apps/{app}", h.app},
		{"GET", "/v1/history", h.history},
		{"POST", "/v1/actions", h.action},
		{"POST", "/v1/apps/{app}/servers/{server}/reconcile", h.reconcile}, // reconcile.go
	}
	for _, rt := range routes {
		h.mux.HandleFunc(rt.method+" "+rt.path, rt.fn)
		h.mux.HandleFunc(rt.path, methodNotAllowed(rt.method))
	}
	if reg != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		h.mux.HandleFunc("/metrics", methodNotAllowed("GET"))
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, Errorf(http.StatusNotFound, "", "no such endpoint %s", r.URL.Path))
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The body limit first, then the token, and only then the body.
	if r.ContentLength > h.cfg.MaxBodyBytes {
		refuseBody(w, r)
		writeError(w, Errorf(http.StatusRequestEntityTooLarge, "",
			"request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, h.cfg.MaxBodyBytes))
		return
	}
	if h.serveRouting(w, r) {
		return
	}
	open := r.URL.Path == "/healthz" || (h.cfg.MetricsOpen && r.URL.Path == "/metrics")
	if !open && !h.authorized(w, r) {
		refuseBody(w, r)
		return
	}
	if r.URL.Path != "/healthz" && r.URL.Path != "/metrics" {
		if err := h.notMember(); err != nil {
			writeError(w, Errorf(http.StatusServiceUnavailable, "", "%v", err))
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// authorized checks the bearer token in constant time (over SHA-256 sums,
// so the length of the token does not leak either) and answers 401 itself.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.tokenErr != nil {
		h.log.Error("API request refused: server misconfigured", "err", h.tokenErr)
		writeError(w, Errorf(http.StatusInternalServerError, "", "API server misconfigured: %v", h.tokenErr))
		return false
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mharaft"`)
		writeError(w, Errorf(http.StatusUnauthorized, "", "missing bearer token (Authorization: Bearer <token>)"))
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	match := subtle.ConstantTimeCompare(sum[:], h.tokenSum[:])
	for _, a := range h.accepted {
		match |= subtle.ConstantTimeCompare(sum[:], a[:])
	}
	if match != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mharaft", error="invalid_token"`)
		h.log.Warn("API request with an invalid token", "remote", r.RemoteAddr, "path", r.URL.Path)
		writeError(w, Errorf(http.StatusUnauthorized, "", "invalid bearer token"))
		return false
	}
	return true
}

func methodNotAllowed(allowed string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, Errorf(http.StatusMethodNotAllowed, "", "method %s not allowed on %s (use %s)", r.Method, r.URL.Path, allowed))
	}
}

// Health is the answer of GET /healthz. A manager that is not (or no
// longer) a member of the Raft group answers 503 with OK false, Removed
// true and Error saying how to bring it back.
type Health struct {
	OK      bool   `json:"ok"`
	Leader  bool   `json:"leader"`
	Version string `json:"version"`
	Removed bool   `json:"removed,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	if err := h.notMember(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Removed: true, Version: BuildVersion, Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Health{OK: true, Leader: h.b.IsLeader(), Version: BuildVersion})
}

// notMember is the Backend's MembershipReporter answer, nil when it has none.
func (h *handler) notMember() error {
	if mr, ok := h.b.(MembershipReporter); ok {
		return mr.NotMember()
	}
	return nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.b.Status(r.Context())
	if err != nil {
		writeError(w, Errorf(StatusOf(err), "", "read status: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) app(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	st, err := h.b.Status(r.Context())
	if err != nil {
		writeError(w, Errorf(StatusOf(err), "", "read status: %v", err))
		return
	}
	a := st.App(name)
	if a == nil {
		writeError(w, unknownApp(name, st))
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("app")
	hist, err := h.b.History(r.Context(), name)
	if err != nil && (name == "" || StatusOf(err) != http.StatusNotFound) {
		writeError(w, Errorf(StatusOf(err), "", "read history: %v", err))
		return
	}
	if name != "" && len(hist) == 0 {
		// An app removed from the cluster keeps its history; an app that
		// has neither history nor status is a typo (404, whether the
		// Backend said so or answered no history).
		st, err := h.b.Status(r.Context())
		if err != nil {
			writeError(w, Errorf(StatusOf(err), "", "read status: %v", err))
			return
		}
		if st.App(name) == nil {
			writeError(w, unknownApp(name, st))
			return
		}
	}
	if hist == nil {
		hist = []HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, hist)
}

func (h *handler) action(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, Errorf(http.StatusRequestEntityTooLarge, "", "request body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, Errorf(http.StatusBadRequest, "", "read request body: %v", err))
		return
	}
	a, err := DecodeAction(body)
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := h.b.Status(r.Context())
	if err != nil {
		writeError(w, Errorf(StatusOf(err), "", "read status to validate the action: %v", err))
		return
	}
	if err := ValidateAction(a, st); err != nil {
		writeError(w, err)
		return
	}
	// An authenticated, valid action may run (or wait for the leader)
	// longer than the server's timeouts allow a response.
	if err := extendDeadlines(w, h.cfg.ActionTimeout+time.Minute); err != nil {
		h.log.Debug("action answered within the server's write timeout only", "err", err)
	}
	if !h.b.IsLeader() {
		h.forward(w, r, body)
		return
	}
	// A client that goes away must not abort an action halfway: the action
	// runs to its end (bounded by ActionTimeout) whatever the client does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.ActionTimeout)
	defer cancel()
	h.log.Info("running action", "kind", a.Kind, "app", a.App, "remote", r.RemoteAddr)
	res, err := h.b.Do(ctx, *a)
	if errors.Is(err, consensus.ErrNotLeader) {
		h.forward(w, r, body)
		return
	}
	if err != nil {
		writeError(w, Errorf(StatusOf(err), fieldOf(err), "%s %s: %v", a.Kind, a.App, msgOf(err)))
		return
	}
	if res == nil {
		res = &ActionResult{OK: true}
	}
	writeJSON(w, http.StatusOK, res)
}

// forward sends an already validated action to the leader with the
// caller's token and copies the leader's answer back.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	hops := 0
	if v := r.Header.Get(HopsHeader); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, Errorf(http.StatusBadRequest, "", "bad %s header %q", HopsHeader, v))
			return
		}
		hops = n
	}
	if hops >= h.cfg.MaxHops {
		writeError(w, Errorf(http.StatusLoopDetected, "",
			"action forwarded %d times without reaching the raft leader (forwarding loop while leadership changes?); not run, retry", hops))
		return
	}
	leader := h.b.LeaderAPIAddr()
	if leader == "" {
		writeError(w, Errorf(http.StatusServiceUnavailable, "", "%v: the action was not run; retry when the managers have a leader", consensus.ErrNoLeader))
		return
	}
	url := BaseURL(leader, h.cfg.tlsEnabled()) + r.URL.RequestURI()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.ActionTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		writeError(w, Errorf(http.StatusInternalServerError, "", "forward to leader %s: %v", leader, err))
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HopsHeader, strconv.Itoa(hops+1))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Header.Set("X-Forwarded-For", host)
	}
	h.log.Info("forwarding action to the leader", "leader", leader, "hops", hops+1)
	resp, err := h.fwd.Do(req)
	if err != nil {
		writeError(w, Errorf(http.StatusBadGateway, "", "forward to leader %s: %v (the action may or may not have run: check the history)", leader, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set(ForwardedHeader, leader)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func forwardClient(cfg ServerConfig) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLSCAFile != "" {
		pool, err := LoadCertPool(cfg.TLSCAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// LoadCertPool reads PEM certificates from file into a new pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// BaseURL turns an API address into a URL without a trailing slash:
// "host:port" gets http:// (https:// when useTLS); a URL is kept.
func BaseURL(addr string, useTLS bool) string {
	addr = strings.TrimRight(addr, "/")
	if strings.Contains(addr, "://") {
		return addr
	}
	if useTLS {
		return "https://" + addr
	}
	return "http://" + addr
}

// Serve serves h on ln until ctx ends, with TLS when cfg has a
// certificate, then shuts down gracefully (waiting up to 5 s). The server
// has the default Limits (NewHTTPServer, LimitListener).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, cfg ServerConfig) error {
	srv := NewHTTPServer(h, Limits{}, cfg.Logger)
	ln = LimitListener(ln, Limits{})
	errc := make(chan error, 1)
	go func() {
		if cfg.tlsEnabled() {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve API on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down API on %s: %w", ln.Addr(), err)
		}
		return nil
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Msg: err.Error()}
	}
	writeJSON(w, e.Status, e)
}

func fieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func msgOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
