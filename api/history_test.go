package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

// historyErrBackend answers History with err (the manager answers a 404
// *api.Error for an application it does not know).
type historyErrBackend struct {
	*apitest.FakeBackend
	err error
}

func (b historyErrBackend) History(ctx context.Context, app string) ([]api.HistoryEntry, error) {
	return nil, b.err
}

// TestHistoryBackendErrors: a Backend's 404 for an unknown application
// is the API's 404 naming the known applications (issue 15 item 6: it was
// a 500), any other error keeps its status.
func TestHistoryBackendErrors(t *testing.T) {
	notFound := &api.Error{Status: 404, Msg: `history of "nope": unknown application`}
	tests := []struct {
		name, path string
		err        error
		code       int
		field, msg string
	}{
		{"unknown app", "/v1/history?app=nope", notFound, 404, "app", `unknown application "nope" (known: app1)`},
		{"unknown app, wrapped", "/v1/history?app=nope", fmt.Errorf("read: %w", notFound), 404, "app", `unknown application "nope" (known: app1)`},
		{"other error", "/v1/history?app=app1", errors.New("disk on fire"), 500, "", "read history: disk on fire"},
		{"404 without an app", "/v1/history", notFound, 404, "", "read history: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := historyErrBackend{FakeBackend: apitest.NewFakeBackend(), err: tc.err}
			ts := httptest.NewServer(api.NewHandler(b, api.ServerConfig{Token: testToken}, nil))
			t.Cleanup(ts.Close)
			a := call(t, "GET", ts.URL+tc.path, testToken, "")
			if a.code != tc.code || a.err.Field != tc.field || !strings.Contains(a.err.Msg, tc.msg) {
				t.Fatalf("got %d %s, want %d field %q saying %q", a.code, a.body, tc.code, tc.field, tc.msg)
			}
		})
	}
}
