package manager

import (
	"net/http"

	"github.com/mharaft/mharaft/api"
)

// handler is the HTTP surface of the node: the consensus forwarding
// endpoint and the public API (/healthz, /v1/...) of package api, or the
// handler Config.APIHandler builds.
func (m *Manager) handler() http.Handler {
	mux := http.NewServeMux()
	m.node.RegisterHandlers(mux)
	var h http.Handler
	if m.cfg.APIHandler != nil {
		h = m.cfg.APIHandler(m)
	} else {
		h = api.NewHandler(m, api.ServerConfig{Token: m.cfg.Token, Logger: m.log.With("component", "api")}, nil)
	}
	mux.Handle("/", h)
	return mux
}
