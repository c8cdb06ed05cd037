package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
)

// QuadletBinary builds the Quadlet generator from the podman module this project requires into a
// temporary dir that is removed when the test ends, and returns its path.
func QuadletBinary(t TB) string {
	t.Helper()
	Need(t, "go")
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-quadlet-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "quadlet")
	cmd := exec.Command("go", "build", "-o", path, "github.com/containers/podman/v5/cmd/quadlet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the quadlet generator: %v: %s", err, out)
	}
	return path
}
