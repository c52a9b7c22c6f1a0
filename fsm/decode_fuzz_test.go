package fsm

import (
	"strings"
	"testing"
	"time"
)

// FuzzApplyBytes feeds arbitrary command bytes of every known command
// type to an FSM holding one application. A payload that is not the
// command's JSON panics by design ("fsm: decode command type N": a
// committed entry that cannot be decoded stops every replica alike, see
// doc.go), as do an unknown type byte and an empty entry; any other panic
// is a bug: a decodable command with any field values must be applied or
// refused, and the state must stay snapshottable.
// go test -run '^$' -fuzz '^FuzzApplyBytes$' ./fsm/
func FuzzApplyBytes(f *testing.F) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seeds := [][]byte{
		EncodeAcquireLock(AcquireLockCmd{App: "a1"}),
		EncodeSetMaster(SetMasterCmd{App: "a1", Master: "s2"}),
		EncodePause(PauseCmd{App: "a1"}),
		EncodeRegisterApp(RegisterAppCmd{App: "a2", Servers: []Server{{Name: "x", Hostname: "h", Port: 1}}, At: at}),
		{byte(ObserveType), '{', '"'},
		{byte(JournalPhaseType), 'n', 'u', 'l', 'l'},
		{byte(ReleaseLockType), '[', ']'},
		{byte(ForceUnlockType)},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if _, known := handlers[CommandType(data[0])]; !known {
			return
		}
		fs := New()
		fs.ApplyBytes(EncodeRegisterApp(RegisterAppCmd{App: "a1", Master: "s1", At: at,
			Servers: []Server{{Name: "s1", Hostname: "h1", Port: 3306}, {Name: "s2", Hostname: "h2", Port: 3306}}}))
		if decodePanic(func() { fs.ApplyBytes(data) }) {
			return
		}
		for _, a := range fs.Apps() {
			if a.Name == "" {
				t.Fatalf("command %q left an application without a name", data)
			}
		}
		if _, err := fs.Snapshot(); err != nil {
			t.Fatalf("snapshot after command %q: %v", data, err)
		}
	})
}

// decodePanic runs f and reports whether it panicked with the FSM's
// decode refusal; any other panic goes on.
func decodePanic(f func()) (refused bool) {
	defer func() {
		if r := recover(); r != nil {
			if msg, ok := r.(string); ok && strings.HasPrefix(msg, "fsm: decode command type ") {
				refused = true
				return
			}
			panic(r)
		}
	}()
	f()
	return false
}
