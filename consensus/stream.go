package consensus

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStreamLayer is a raft.StreamLayer over TLS: both ends present
// certificates from cfg.TLS.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	config    *tls.Config
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

func newTLSStreamLayer(bind string, advertise net.Addr, cfg *tls.Config) (*tlsStreamLayer, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	server := cfg.Clone()
	if server.ClientCAs != nil && server.ClientAuth == tls.NoClientCert {
		server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &tlsStreamLayer{Listener: tls.NewListener(l, server), advertise: advertise, config: cfg}, nil
}

// Dial opens a TLS connection to a peer.
func (t *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), t.config)
}

// Addr is the advertised address.
func (t *tlsStreamLayer) Addr() net.Addr { return t.advertise }
