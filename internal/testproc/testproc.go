// Package testproc holds what the test-support packages (k8stest,
// promtest) need to run real binaries next to a test: the repository root,
// to find binaries and testdata from any package directory, and Proc, a
// child process that logs to a file, dies with the test process (or is
// detached on purpose) and is stopped politely, then by force.
//
// It is for tests and test tooling only; nothing in the product imports it.
package testproc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// modulePath identifies the checkout's go.mod; a go.mod of another module
// on the way up (testdata/app has its own) is not the root.
const modulePath = "github.com/gantry-ci/gantry"

// RepoRoot finds the checkout: from this source file when the package was
// built without -trimpath, else by walking up from the working directory
// (a test's working directory is its package directory).
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the repository root (a go.mod with module %s) above %s", modulePath, strings.Join(starts, " or "))
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// RemoveStaleDirs removes the directories os.TempDir()/prefix<pid>-* whose
// owning process has exited. Nothing runs when a test process is killed
// (a panic, a timeout), so each run cleans up after the earlier ones; the
// directories of live processes, this one included, are kept.
func RemoveStaleDirs(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), prefix)
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}
