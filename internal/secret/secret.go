// Package secret checks the files that hold mharaft's secrets (the API
// token, the SSH key, the TLS key) the way OpenSSH checks a private key:
// a file that group or others may access is refused, and a token too short
// to resist guessing is refused.
//
// Invariants: every secret file the daemon reads goes through File (or
// Token) before it is used; the messages name the file, its mode and the
// command that fixes it.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// MinTokenBytes is the shortest token accepted.
const MinTokenBytes = 16

// File refuses path when group or others have any permission on it (mode
// & 0o077), as OpenSSH refuses a private key; what names the file in the
// message ("token file", "ssh key", "TLS key").
func File(what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: group or others can access it and it holds a secret; run `chmod 600 %s`", what, path, perm, path)
	}
	return nil
}

// Token reads a token file: the file must pass File, and its content,
// surrounding whitespace trimmed, must be at least MinTokenBytes long.
func Token(path string) (string, error) {
	if err := File("token file", path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty; make a token with `head -c 32 /dev/urandom | base64 > %s && chmod 600 %s`", path, path, path)
	}
	if len(tok) < MinTokenBytes {
		return "", fmt.Errorf("token file %s holds a %d-byte token, shorter than the %d bytes required; make one with `head -c 32 /dev/urandom | base64 > %s && chmod 600 %s`",
			path, len(tok), MinTokenBytes, path, path)
	}
	return tok, nil
}

// AcceptTokens reads a file of tokens accepted besides the current one
// during a token rotation (docs/SECURITY.md): one token per line, blank
// lines and lines starting with # ignored; the file must pass File and
// every token must be at least MinTokenBytes long.
func AcceptTokens(path string) ([]string, error) {
	if err := File("accept-token file", path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accept-token file %s: %w", path, err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		tok := strings.TrimSpace(line)
		if tok == "" || strings.HasPrefix(tok, "#") {
			continue
		}
		if len(tok) < MinTokenBytes {
			return nil, fmt.Errorf("accept-token file %s line %d holds a %d-byte token, shorter than the %d bytes required", path, i+1, len(tok), MinTokenBytes)
		}
		out = append(out, tok)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("accept-token file %s holds no token (one per line)", path)
	}
	return out, nil
}

// Files under manager_workdir (saved binlog tails and relay diffs hold row
// data; reports name servers and positions) are the manager's only: 0600
// files in 0700 directories. An existing directory keeps its mode (it may
// be a shared one such as MHA's /var/tmp): its files are 0600 still.

// MkdirAll creates dir and its missing parents 0700.
func MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

// Create creates or truncates path for writing, 0600 (an existing file is
// made 0600 too).
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// WriteFile writes data to path, 0600 (an existing file is made 0600 too).
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
