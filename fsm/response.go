package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
)

// wireResponse is an Apply response as it travels from the leader to the
// follower that forwarded the command.
type wireResponse struct {
	Kind    string              `json:"kind"`              // "none", "lock", "observe-batch", "error"
	Lock    *Lock               `json:"lock,omitempty"`    // Kind "lock"
	Batch   *ObserveBatchResult `json:"batch,omitempty"`   // Kind "observe-batch"
	Code    string              `json:"code,omitempty"`    // Kind "error": a sentinel code, "" if none
	Message string              `json:"message,omitempty"` // Kind "error"
}

// RemoteError is a refusal decoded from another manager: its message is
// the original one, and errors.Is matches the original sentinel.
type RemoteError struct {
	Sentinel error // nil when the original wrapped no sentinel
	Message  string
}

func (e *RemoteError) Error() string { return e.Message }
func (e *RemoteError) Unwrap() error { return e.Sentinel }

// MarshalResponse encodes an Apply response (nil, Lock,
// ObserveBatchResult or error) for the wire.
func MarshalResponse(v any) ([]byte, error) {
	var w wireResponse
	switch r := v.(type) {
	case nil:
		w.Kind = "none"
	case Lock:
		w.Kind = "lock"
		w.Lock = &r
	case ObserveBatchResult:
		w.Kind = "observe-batch"
		w.Batch = &r
	case error:
		w.Kind = "error"
		w.Message = r.Error()
		for code, s := range sentinels {
			if errors.Is(r, s) {
				w.Code = code
				break
			}
		}
	default:
		return nil, fmt.Errorf("marshal apply response: unsupported type %T", v)
	}
	return json.Marshal(w)
}

// UnmarshalResponse decodes what MarshalResponse encoded; an error
// response comes back as a *RemoteError value (not as the returned error,
// which reports a decoding problem).
func UnmarshalResponse(b []byte) (any, error) {
	var w wireResponse
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("unmarshal apply response: %w", err)
	}
	switch w.Kind {
	case "none":
		return nil, nil
	case "lock":
		if w.Lock == nil {
			return nil, errors.New("unmarshal apply response: lock response without lock")
		}
		return *w.Lock, nil
	case "observe-batch":
		if w.Batch == nil {
			return nil, errors.New("unmarshal apply response: observe-batch response without result")
		}
		return *w.Batch, nil
	case "error":
		return &RemoteError{Sentinel: sentinels[w.Code], Message: w.Message}, nil
	default:
		return nil, fmt.Errorf("unmarshal apply response: unknown kind %q", w.Kind)
	}
}
