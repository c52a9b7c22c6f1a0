package consensus

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The Raft port admits a connection only after a mutual proof of the
// cluster token, before hashicorp/raft's NetworkTransport reads or writes
// a byte of it (with TLS, inside the TLS session):
//
//	dialer -> listener: authMagic | nonceC (32 bytes)
//	listener -> dialer: authMagic | nonceS (32) | n (1 byte) | n proofs (32 each)
//	dialer -> listener: proofC (32)
//	listener -> dialer: authOK (1 byte)
//
// A proof is HMAC-SHA256(k, role | nonceC | nonceS), role "server" or
// "client", k = HMAC-SHA256(token, authKeyLabel): one proof per token the
// listener accepts (Config.Token, then Config.AcceptTokens, so that a
// rotation can run with two tokens). The dialer checks the listener's
// proofs first and answers with a proof under a token both know; so
// nobody gets a "client" proof without having proved the token first, and
// a listener's proof (role "server") is no use as a client's. Proofs are
// compared in constant time. The whole exchange must end within
// authTimeout; at most maxPendingAuth handshakes run at once, off
// raft's accept loop, so a slow or silent peer delays nobody.
//
// Without TLS the proof authenticates the peer at the start of the
// connection; it does not encrypt or sign what follows (an attacker who
// can rewrite traffic on the path needs --tls-*: see docs/SECURITY.md).
const (
	authMagic      = "MHARAFT\x01"
	authKeyLabel   = "mharaft raft transport auth v1"
	authNonceSize  = 32
	authProofSize  = sha256.Size
	authOK         = 0x01
	maxAuthTokens  = 8
	authTimeout    = 5 * time.Second
	maxPendingAuth = 64
)

// Errors of the Raft port handshake (wrapped with the peer's address).
var (
	// ErrPeerWrongToken: the peer did not prove a token this node accepts.
	ErrPeerWrongToken = errors.New("the peer does not know the cluster token (a different --token-file, or not a manager)")
	// ErrPeerNotAuthenticating: the peer spoke something else than the
	// handshake (an mhanode from before authenticated Raft, or not a manager).
	ErrPeerNotAuthenticating = errors.New("the peer did not start the token handshake (an mhanode older than this one, or not a manager)")
	// ErrRefusedByPeer: the listener closed the connection after our proof:
	// it does not accept our token.
	ErrRefusedByPeer = errors.New("the peer refused our token (check that every manager has the same --token-file)")
)

// authKeys derives the handshake keys of the tokens (tokens[0] first).
func authKeys(tokens []string) [][]byte {
	var keys [][]byte
	for _, t := range tokens {
		if t == "" || len(keys) == maxAuthTokens {
			continue
		}
		m := hmac.New(sha256.New, []byte(t))
		m.Write([]byte(authKeyLabel))
		keys = append(keys, m.Sum(nil))
	}
	return keys
}

func authProof(key []byte, role string, nonceC, nonceS []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(nonceC)
	m.Write(nonceS)
	return m.Sum(nil)
}

// matchKey returns the index of the key under which proof is valid, -1 if
// none; every key is tried (no early exit).
func matchKey(keys [][]byte, proof []byte, role string, nonceC, nonceS []byte) int {
	found := -1
	for i, k := range keys {
		if subtle.ConstantTimeCompare(authProof(k, role, nonceC, nonceS), proof) == 1 && found < 0 {
			found = i
		}
	}
	return found
}

// tlsHandshake runs a pending TLS handshake first, so a certificate
// problem is reported as such.
func tlsHandshake(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
	}
	return nil
}

// clientAuth proves the token to the listener at the other end of c.
func clientAuth(c net.Conn, keys [][]byte) error {
	if err := tlsHandshake(c); err != nil {
		return err
	}
	nonceC := make([]byte, authNonceSize)
	if _, err := rand.Read(nonceC); err != nil {
		return err
	}
	if _, err := c.Write(append([]byte(authMagic), nonceC...)); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	head := make([]byte, len(authMagic)+authNonceSize+1)
	if _, err := io.ReadFull(c, head); err != nil {
		return fmt.Errorf("read handshake answer: %w", err)
	}
	if !bytes.Equal(head[:len(authMagic)], []byte(authMagic)) {
		return ErrPeerNotAuthenticating
	}
	nonceS := head[len(authMagic) : len(authMagic)+authNonceSize]
	n := int(head[len(head)-1])
	if n == 0 || n > maxAuthTokens {
		return fmt.Errorf("%w: %d proofs", ErrPeerNotAuthenticating, n)
	}
	proofs := make([]byte, n*authProofSize)
	if _, err := io.ReadFull(c, proofs); err != nil {
		return fmt.Errorf("read handshake proofs: %w", err)
	}
	common := -1
	for i := 0; i < n; i++ {
		if k := matchKey(keys, proofs[i*authProofSize:(i+1)*authProofSize], "server", nonceC, nonceS); k >= 0 && common < 0 {
			common = k
		}
	}
	if common < 0 {
		return ErrPeerWrongToken
	}
	if _, err := c.Write(authProof(keys[common], "client", nonceC, nonceS)); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	ok := make([]byte, 1)
	if _, err := io.ReadFull(c, ok); err != nil || ok[0] != authOK {
		return ErrRefusedByPeer
	}
	return nil
}

// serverAuth checks the proof of the dialer at the other end of c.
func serverAuth(c net.Conn, keys [][]byte) error {
	if err := tlsHandshake(c); err != nil {
		return err
	}
	magic := make([]byte, len(authMagic))
	if _, err := io.ReadFull(c, magic); err != nil {
		return fmt.Errorf("read handshake: %w", err)
	}
	if !bytes.Equal(magic, []byte(authMagic)) {
		return ErrPeerNotAuthenticating
	}
	nonceC := make([]byte, authNonceSize)
	if _, err := io.ReadFull(c, nonceC); err != nil {
		return fmt.Errorf("read handshake nonce: %w", err)
	}
	nonceS := make([]byte, authNonceSize)
	if _, err := rand.Read(nonceS); err != nil {
		return err
	}
	out := append([]byte(authMagic), nonceS...)
	out = append(out, byte(len(keys)))
	for _, k := range keys {
		out = append(out, authProof(k, "server", nonceC, nonceS)...)
	}
	if _, err := c.Write(out); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	proof := make([]byte, authProofSize)
	if _, err := io.ReadFull(c, proof); err != nil {
		// The dialer hangs up without a proof when our proofs do not
		// match its token: the same mistake seen from this side.
		return fmt.Errorf("%w (it sent no proof: %v)", ErrPeerWrongToken, err)
	}
	if matchKey(keys, proof, "client", nonceC, nonceS) < 0 {
		return ErrPeerWrongToken
	}
	if _, err := c.Write([]byte{authOK}); err != nil {
		return fmt.Errorf("send handshake result: %w", err)
	}
	return nil
}

// authLayer is the raft.StreamLayer of every node: a TCP (or TLS)
// listener whose connections reach raft only after serverAuth, and a
// Dial that runs clientAuth.
type authLayer struct {
	inner     net.Listener
	advertise net.Addr
	tlsConfig *tls.Config // nil: plain TCP
	keys      [][]byte
	logger    hclog.Logger

	ready     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	pending   chan struct{}
	wg        sync.WaitGroup

	logMu      sync.Mutex
	logWindow  time.Time
	logLines   int
	suppressed int
}

var _ raft.StreamLayer = (*authLayer)(nil)

// NewStreamLayer binds the Raft port on bind and returns the stream layer
// mharaft's transport uses: every accepted connection must prove one of
// tokens (the first is the one this side proves when dialing, the others
// are accepted too), and with tlsConfig set the connection is mutual TLS
// first. Refusals are logged on logger (remote address and reason, never
// a token). Exported for tools and tests that must speak to a manager's
// Raft port (raft.NewNetworkTransport(layer, ...)).
func NewStreamLayer(bind string, advertise net.Addr, tokens []string, tlsConfig *tls.Config, logger hclog.Logger) (raft.StreamLayer, error) {
	return newAuthLayer(bind, advertise, tokens, tlsConfig, logger)
}

func newAuthLayer(bind string, advertise net.Addr, tokens []string, tlsConfig *tls.Config, logger hclog.Logger) (*authLayer, error) {
	keys := authKeys(tokens)
	if len(keys) == 0 {
		return nil, errors.New("raft transport: a token is required")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		server := tlsConfig.Clone()
		if server.ClientCAs != nil && server.ClientAuth == tls.NoClientCert {
			server.ClientAuth = tls.RequireAndVerifyClientCert
		}
		l = tls.NewListener(l, server)
	}
	if advertise == nil {
		advertise = l.Addr()
	}
	a := &authLayer{
		inner: l, advertise: advertise, tlsConfig: tlsConfig, keys: keys, logger: logger,
		ready: make(chan net.Conn), closed: make(chan struct{}), pending: make(chan struct{}, maxPendingAuth),
	}
	a.wg.Add(1)
	go a.acceptLoop()
	return a, nil
}

// acceptLoop accepts connections and authenticates each in its own
// goroutine; Accept hands out only the authenticated ones.
func (a *authLayer) acceptLoop() {
	defer a.wg.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := a.inner.Accept()
		if err != nil {
			select {
			case <-a.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.logger.Error("raft port: accept failed", "error", err)
			select {
			case <-a.closed:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		select {
		case a.pending <- struct{}{}:
		default:
			a.refused(c, fmt.Errorf("more than %d handshakes in progress", maxPendingAuth))
			c.Close()
			continue
		}
		a.wg.Add(1)
		go a.authenticate(c)
	}
}

func (a *authLayer) authenticate(c net.Conn) {
	defer a.wg.Done()
	defer func() { <-a.pending }()
	c.SetDeadline(time.Now().Add(authTimeout))
	if err := serverAuth(c, a.keys); err != nil {
		a.refused(c, err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	select {
	case a.ready <- c:
	case <-a.closed:
		c.Close()
	}
}

// refused logs a refused connection, at most 10 lines a second (the
// others are counted and the count is logged with the next line).
func (a *authLayer) refused(c net.Conn, err error) {
	a.logMu.Lock()
	now := time.Now()
	if now.Sub(a.logWindow) >= time.Second {
		a.logWindow, a.logLines = now, 0
	}
	a.logLines++
	if a.logLines > 10 {
		a.suppressed++
		a.logMu.Unlock()
		return
	}
	suppressed := a.suppressed
	a.suppressed = 0
	a.logMu.Unlock()
	args := []any{"remote", c.RemoteAddr().String(), "local", c.LocalAddr().String(), "reason", err.Error()}
	if suppressed > 0 {
		args = append(args, "refusals_not_logged_before", suppressed)
	}
	a.logger.Warn("refused a raft connection: the peer did not authenticate, nothing it sent was read as raft", args...)
}

// Accept returns the next authenticated connection.
func (a *authLayer) Accept() (net.Conn, error) {
	select {
	case c := <-a.ready:
		return c, nil
	case <-a.closed:
		return nil, net.ErrClosed
	}
}

// Close stops listening; handshakes in progress are abandoned.
func (a *authLayer) Close() error {
	var err error
	a.closeOnce.Do(func() {
		close(a.closed)
		err = a.inner.Close()
	})
	return err
}

// Addr is the advertised address.
func (a *authLayer) Addr() net.Addr { return a.advertise }

// Dial connects to a peer's Raft port and proves the token.
func (a *authLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if a.tlsConfig != nil {
		c, err = tls.DialWithDialer(d, "tcp", string(address), a.tlsConfig)
	} else {
		c, err = d.Dial("tcp", string(address))
	}
	if err != nil {
		return nil, err
	}
	limit := authTimeout
	if timeout > 0 && timeout < limit {
		limit = timeout
	}
	c.SetDeadline(time.Now().Add(limit))
	if err := clientAuth(c, a.keys); err != nil {
		c.Close()
		return nil, fmt.Errorf("authenticate to raft peer %s: %w", address, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
