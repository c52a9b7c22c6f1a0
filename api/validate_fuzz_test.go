package api_test

import (
	"errors"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/mharaft/mharaft/api"
	"github.com/mharaft/mharaft/api/apitest"
)

// FuzzValidateAction feeds arbitrary request bodies to DecodeAction and
// ValidateAction against a three-server application: they never panic,
// every refusal is an *Error with a 4xx status and a message, and an
// accepted action has a known kind.
// go test -run '^$' -fuzz '^FuzzValidateAction$' ./api/
func FuzzValidateAction(f *testing.F) {
	for _, s := range []string{
		`{"kind":"ack","app":"app1","reason":"checked"}`,
		`{"kind":"switch","app":"app1","new_master":"server2","orig_master_is_new_slave":true}`,
		`{"kind":"failover","app":"app1","dead_master":"server1","new_master":"127.0.0.1:3308"}`,
		`{"kind":"server-add","app":"app1","server":{"name":"server4","hostname":"127.0.0.1","port":3309}}`,
		`{"kind":"member-remove","member_id":"node2","force":true}`,
		`{"kind":"rejoin","app":"app1","host":"server1"} {}`,
		`{"kind":1}`, `[]`, `{"kind":"ack","app":"app1","extra":1}`, "",
	} {
		f.Add([]byte(s))
	}
	st := apitest.NewFakeBackend().State
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := api.DecodeAction(body)
		if err == nil {
			err = api.ValidateAction(a, &st)
			if err == nil {
				if !known(a.Kind) {
					t.Fatalf("accepted an action of unknown kind %q from %q", a.Kind, body)
				}
				return
			}
		}
		var e *api.Error
		if !errors.As(err, &e) {
			t.Fatalf("refusal of %q is %T, not *api.Error: %v", body, err, err)
		}
		if e.Status < 400 || e.Status >= 500 || e.Status == http.StatusUnauthorized || e.Msg == "" {
			t.Fatalf("refusal of %q: status %d message %q, want a 4xx with a message", body, e.Status, e.Msg)
		}
		if !utf8.ValidString(e.Msg) {
			t.Fatalf("refusal of %q: message is not valid UTF-8: %q", body, e.Msg)
		}
	})
}

func known(kind string) bool {
	for _, k := range api.ActionKinds {
		if k == kind {
			return true
		}
	}
	return false
}
