package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// modulePath is the module whose commands BuildBinaries builds.
const modulePath = "github.com/mharaft/mharaft"

var (
	buildMu sync.Mutex
	built   = map[string]bool{} // binary paths this process has built
)

// BuildBinaries builds the commands pkgs (module-relative: "./cmd/mhanode",
// "./cmd/mhactl") into dir, as `go build -o dir/ pkgs...` run from the
// module root, which it finds above the working directory (a test's is its
// package directory). The binaries are dir/mhanode, dir/mhactl, ...
//
// Each binary is built once per process: a command already built into dir
// by this process (and still there) is not built again.
func BuildBinaries(ctx context.Context, dir string, pkgs ...string) error {
	dir, err := filepath.Abs(dir) // go build runs in the module root
	if err != nil {
		return fmt.Errorf("build %s: %w", strings.Join(pkgs, " "), err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	var todo []string
	for _, p := range pkgs {
		bin := filepath.Join(dir, path.Base(p))
		if _, err := os.Stat(bin); err != nil || !built[bin] {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("build %s: %w", strings.Join(todo, " "), err)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, todo...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (in %s): %w\n%s", strings.Join(todo, " "), root, err, out)
	}
	for _, p := range todo {
		built[filepath.Join(dir, path.Base(p))] = true
	}
	return nil
}

// moduleRoot is the directory of this module's go.mod, the first one at
// or above the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("the module root of " + modulePath + " is not at or above the working directory " + wd + ": run from inside the repository")
		}
	}
}
