package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client talks to a mharaft cluster through any of its managers' APIs.
// It finds a live node itself: it asks GET /healthz of each address in
// turn, prefers the one that says it is the Raft leader, and remembers the
// choice until a request to it cannot connect.
//
// Reads (Status, App, History) go to any live node and move on to the next
// address when one cannot be reached. Do sends the action once: it moves to
// another address only when the connection could not be opened (nothing
// was sent); an error after that reports that the outcome is unknown.
type Client struct {
	Addrs []string     // "host:port" (http) or URLs; tried in this order
	Token string       // bearer token
	HTTP  *http.Client // http.DefaultClient when nil; bound requests with the context

	// ProbeTimeout bounds each /healthz probe while looking for a node
	// (2 s when 0).
	ProbeTimeout time.Duration

	mu     sync.Mutex
	picked string // base URL of the chosen node
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Health asks one address for GET /healthz (no token needed).
func (c *Client) Health(ctx context.Context, addr string) (*Health, error) {
	var h Health
	if err := c.get(ctx, BaseURL(addr, false), "/healthz", &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// pick returns the base URL to use: the remembered one, else the leader
// among Addrs, else the first live address. Every failure names its
// address.
func (c *Client) pick(ctx context.Context) (string, error) {
	c.mu.Lock()
	p := c.picked
	c.mu.Unlock()
	if p != "" {
		return p, nil
	}
	if len(c.Addrs) == 0 {
		return "", fmt.Errorf("%w: no API address given (--addr or MHACTL_ADDR)", ErrUnreachable)
	}
	timeout := c.ProbeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var live string
	var errs []string
	for _, addr := range c.Addrs {
		base := BaseURL(addr, false)
		pctx, cancel := context.WithTimeout(ctx, timeout)
		var h Health
		err := c.get(pctx, base, "/healthz", &h)
		cancel()
		if err != nil {
			errs = append(errs, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if h.Leader {
			live = base
			break
		}
		if live == "" {
			live = base
		}
	}
	if live == "" {
		return "", fmt.Errorf("%w: %s", ErrUnreachable, strings.Join(errs, "; "))
	}
	c.mu.Lock()
	c.picked = live
	c.mu.Unlock()
	return live, nil
}

func (c *Client) forget(base string) {
	c.mu.Lock()
	if c.picked == base {
		c.picked = ""
	}
	c.mu.Unlock()
}

// read GETs path from the picked node; if that node cannot be reached it
// picks again (once) among the others.
func (c *Client) read(ctx context.Context, path string, out any) error {
	var firstErr error
	for attempt := 0; attempt < 2; attempt++ {
		base, err := c.pick(ctx)
		if err != nil {
			if firstErr != nil {
				return fmt.Errorf("%w (after %v)", err, firstErr)
			}
			return err
		}
		err = c.get(ctx, base, path, out)
		if err == nil || !isConnError(err) {
			return err
		}
		c.forget(base)
		if firstErr == nil {
			firstErr = err
		}
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, firstErr)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.read(ctx, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// App is GET /v1/apps/{app}.
func (c *Client) App(ctx context.Context, app string) (*AppStatus, error) {
	var a AppStatus
	if err := c.read(ctx, "/v1/apps/"+url.PathEscape(app), &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// History is GET /v1/history; app "" means every application.
func (c *Client) History(ctx context.Context, app string) ([]HistoryEntry, error) {
	path := "/v1/history"
	if app != "" {
		path += "?app=" + url.QueryEscape(app)
	}
	var h []HistoryEntry
	if err := c.read(ctx, path, &h); err != nil {
		return nil, err
	}
	return h, nil
}

// Do is POST /v1/actions. A refused or failed request is an *Error; an
// action that ran and failed is a result with OK false and a nil error.
func (c *Client) Do(ctx context.Context, a Action) (*ActionResult, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode action: %w", err)
	}
	var tried []string
	for range c.Addrs {
		base, err := c.pick(ctx)
		if err != nil {
			if len(tried) > 0 {
				return nil, fmt.Errorf("%w (after %s)", err, strings.Join(tried, "; "))
			}
			return nil, err
		}
		var res ActionResult
		err = c.send(ctx, http.MethodPost, base, "/v1/actions", body, &res)
		if err == nil {
			return &res, nil
		}
		if !isDialError(err) {
			if isConnError(err) {
				return nil, fmt.Errorf("%w (the action may or may not have run: check mhactl status and history)", err)
			}
			return nil, err
		}
		c.forget(base)
		tried = append(tried, err.Error())
	}
	return nil, fmt.Errorf("%w: %s", ErrUnreachable, strings.Join(tried, "; "))
}

func (c *Client) get(ctx context.Context, base, path string, out any) error {
	return c.send(ctx, http.MethodGet, base, path, nil, out)
}

// send does one request and decodes a 2xx answer into out, any other into
// an *Error. Transport errors name the URL.
func (c *Client) send(ctx context.Context, method, base, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &connError{addr: base, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &connError{addr: base, err: fmt.Errorf("read answer to %s %s: %w", method, path, err)}
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode, Addr: base}
		if json.Unmarshal(data, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(data))
			if e.Msg == "" {
				e.Msg = http.StatusText(resp.StatusCode)
			}
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer to %s %s: %w", base, method, path, err)
	}
	return nil
}

// connError is a request that got no HTTP answer.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string { return e.addr + ": " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func isConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// isDialError: the connection could not be opened, so nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return isConnError(err) && errors.As(err, &op) && op.Op == "dial"
}
