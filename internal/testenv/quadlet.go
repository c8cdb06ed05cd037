package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	quadletOnce sync.Once
	quadletPath string
	quadletErr  error
)

// QuadletBinary builds the Quadlet generator from the podman module this project requires (once per
// test binary) and returns its path.
func QuadletBinary(t TB) string {
	t.Helper()
	Need(t, "go")
	quadletOnce.Do(func() {
		dir, err := os.MkdirTemp("/var/tmp", "lockstep-quadlet-")
		if err != nil {
			quadletErr = err
			return
		}
		quadletPath = filepath.Join(dir, "quadlet")
		cmd := exec.Command("go", "build", "-o", quadletPath, "github.com/containers/podman/v5/cmd/quadlet")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			quadletErr = &buildError{err, string(out)}
		}
	})
	if quadletErr != nil {
		t.Fatalf("building the quadlet generator: %v", quadletErr)
	}
	return quadletPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }
