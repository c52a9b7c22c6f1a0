package api

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnreachable: Client errors wrap it when no node could be reached at
// all.
//
// The API has no "not leader" sentinel of its own: a Backend whose Do finds
// that it lost the leadership after the handler checked IsLeader returns an
// error wrapping consensus.ErrNotLeader, and the handler then forwards the
// request to the new leader (within the hop limit).
var ErrUnreachable = errors.New("no mharaft node reachable")

// Error is the JSON body of every 4xx/5xx answer, and the error the Client
// returns for one. A Backend may return an *Error from Do to choose the
// HTTP status (409 for a held failover lock, 412 for a refused precondition
// such as last_failover_minute); any other error becomes a 500.
type Error struct {
	Status int    `json:"-"`               // HTTP status code
	Msg    string `json:"error"`           // what is wrong
	Field  string `json:"field,omitempty"` // the request field at fault, if one is
	Addr   string `json:"-"`               // client side: the node that answered
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Field != "" {
		s = fmt.Sprintf("%s (field %q)", s, e.Field)
	}
	if e.Addr != "" {
		s = fmt.Sprintf("%s: %s (HTTP %d)", e.Addr, s, e.Status)
	}
	return s
}

// Errorf builds an *Error with an HTTP status.
func Errorf(status int, field, format string, args ...any) *Error {
	return &Error{Status: status, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// StatusOf is the HTTP status err maps to: its own for an *Error, 500
// otherwise.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}
