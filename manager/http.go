package manager

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mharaft/mharaft/api"
)

// handler is the HTTP surface of the node: the consensus forwarding
// endpoint and the public API (/healthz, /v1/..., /metrics) of package
// api, or the handler Config.APIHandler builds.
func (m *Manager) handler() http.Handler {
	mux := http.NewServeMux()
	m.node.RegisterHandlers(mux)
	var h http.Handler
	if m.cfg.APIHandler != nil {
		h = m.cfg.APIHandler(m)
	} else {
		var reg *prometheus.Registry
		if m.cfg.Metrics != nil {
			reg = m.cfg.Metrics.Registry
		}
		h = api.NewHandler(m, api.ServerConfig{
			Token: m.cfg.Token, AcceptTokens: m.cfg.AcceptTokens, Logger: m.log.With("component", "api"),
			TLSCert: m.cfg.TLSCert, TLSKey: m.cfg.TLSKey, TLSCAFile: m.cfg.TLSCAFile,
			MetricsOpen: m.cfg.MetricsOpen,
		}, reg)
	}
	mux.Handle("/", h)
	return mux
}

func (m *Manager) tlsEnabled() bool { return m.cfg.TLSCert != "" && m.cfg.TLSKey != "" }

// raftTLS is the consensus TLS configuration (nil without TLS): this
// node's certificate, and the CA (when given) both as the roots that verify
// the peers and as the CA their client certificates must chain to, so the
// Raft transport is mutual TLS. The HTTP API shares the listener with the
// forwarding endpoint, so with TLS the forwarding must speak HTTPS too.
func (m *Manager) raftTLS() (*tls.Config, error) {
	if !m.tlsEnabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(m.cfg.TLSCert, m.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", m.cfg.TLSCert, m.cfg.TLSKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if m.cfg.TLSCAFile != "" {
		pool, err := api.LoadCertPool(m.cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		cfg.RootCAs, cfg.ClientCAs = pool, pool
	}
	return cfg, nil
}
