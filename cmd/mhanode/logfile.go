package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mharaft/mharaft/config"
)

// logFile is the daemon's log file (manager_log): written 0600, reopened
// by Reopen (on SIGHUP) so logrotate can move it away.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen opens the path again (a new file once logrotate renamed the old
// one) and closes the previous file.
func (l *logFile) Reopen() error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("manager_log %s: create its directory: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("manager_log %s: %w", l.path, err)
	}
	// An existing file keeps its mode on open: the log names servers and
	// users, so it is the owner's only.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("manager_log %s: make it 0600: %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// managerLog is the one manager_log of the applications: "" when none sets
// it, an error when they set different files (one mhanode writes one log).
func managerLog(apps []*config.App) (string, error) {
	path, from := "", ""
	var conflict []string
	for _, a := range apps {
		if a.ManagerLog == "" {
			continue
		}
		if path == "" {
			path, from = a.ManagerLog, a.File
			continue
		}
		if a.ManagerLog != path {
			conflict = append(conflict, fmt.Sprintf("%s sets %s", a.File, a.ManagerLog))
		}
	}
	if len(conflict) > 0 {
		return "", fmt.Errorf("manager_log: %s sets %s but %s; one mhanode writes one log: set the same manager_log in every application file (or once in --global-conf)",
			from, path, strings.Join(conflict, ", "))
	}
	return path, nil
}
