package api

// Divergence recovery: POST /v1/apps/{app}/servers/{server}/reconcile
// (token required) shows the transactions a former master holds that the
// current master lacks and, with {"apply": true}, replays them on the
// current master. Only the leader answers it (it reads the old master's
// binlog, or acts): a follower forwards it like an action.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mharaft/mharaft/consensus"
)

// HealthDiverged is the health of a former master that holds transactions
// the current master lacks: it is fenced and kept out of the topology
// until `mhactl reconcile` and `mhactl rejoin`.
const HealthDiverged = "diverged"

// ReconcileRequest is the body of the reconcile endpoint.
type ReconcileRequest struct {
	Apply bool `json:"apply,omitempty"`
}

// Reconcile is a former master's divergence: its transactions that the
// current master lacks, where they are written, and what a replay did.
// Field names are a contract (the chaos checker reads them).
type Reconcile struct {
	App          string        `json:"app"`
	Server       string        `json:"server"`
	Epoch        uint64        `json:"epoch"` // the failover the server missed
	File         string        `json:"file"`  // the divergence file, a path on the leader
	State        string        `json:"state"` // detected, reconciled, rejoined
	Transactions []ReconcileTx `json:"transactions"`
	Applied      int           `json:"applied"`  // transactions replayed on the current master
	Conflict     string        `json:"conflict"` // why the last replay stopped ("" when none did)
}

// ReconcileTx is one divergent transaction.
type ReconcileTx struct {
	GTID   string         `json:"gtid"`   // "" without GTID
	Binlog string         `json:"binlog"` // file:pos in the former master's binlog
	Time   time.Time      `json:"time"`
	Tables []string       `json:"tables"`
	SQL    []string       `json:"sql"`
	Rows   []ReconcileRow `json:"rows"`
}

// ReconcileRow is one row change: for an update, Values is the after
// image. A SQL NULL is null.
type ReconcileRow struct {
	Table   string    `json:"table"`
	Type    string    `json:"type"` // insert, update, delete
	Columns []string  `json:"columns"`
	Values  []*string `json:"values"`
}

// ReconcileBackend is implemented by a Backend that recovers divergent
// transactions. An error wrapping consensus.ErrNotLeader makes the request
// go to the leader.
type ReconcileBackend interface {
	Reconcile(ctx context.Context, app, server string, apply bool) (*Reconcile, error)
}

func (h *handler) reconcile(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, Errorf(http.StatusBadRequest, "", "read request body: %v", err))
		return
	}
	var req ReconcileRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, Errorf(http.StatusBadRequest, "", "decode reconcile request: %v", err))
			return
		}
	}
	rb, ok := h.b.(ReconcileBackend)
	if !ok {
		writeError(w, Errorf(http.StatusNotImplemented, "", "this manager cannot reconcile divergent transactions"))
		return
	}
	if err := extendDeadlines(w, h.cfg.ActionTimeout+time.Minute); err != nil {
		h.log.Debug("reconcile answered within the server's write timeout only", "err", err)
	}
	if !h.b.IsLeader() {
		h.forward(w, r, body)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.ActionTimeout)
	defer cancel()
	app, server := r.PathValue("app"), r.PathValue("server")
	h.log.Info("reconcile", "app", app, "server", server, "apply", req.Apply, "remote", r.RemoteAddr)
	res, err := rb.Reconcile(ctx, app, server, req.Apply)
	if errors.Is(err, consensus.ErrNotLeader) {
		h.forward(w, r, body)
		return
	}
	if err != nil {
		writeError(w, Errorf(StatusOf(err), "", "reconcile %s of %s: %v", server, app, msgOf(err)))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Reconcile is POST /v1/apps/{app}/servers/{server}/reconcile: the
// divergence of server, replayed on the current master with apply.
func (c *Client) Reconcile(ctx context.Context, app, server string, apply bool) (*Reconcile, error) {
	body, err := json.Marshal(ReconcileRequest{Apply: apply})
	if err != nil {
		return nil, err
	}
	base, err := c.pick(ctx)
	if err != nil {
		return nil, err
	}
	var res Reconcile
	path := "/v1/apps/" + url.PathEscape(app) + "/servers/" + url.PathEscape(server) + "/reconcile"
	if err := c.send(ctx, http.MethodPost, base, path, body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
