package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const image = "localhost/lockstep-test/busybox:1"

var shared = testenv.NewShared(func(t testenv.TB) any {
	p := testenv.StartPodman(t)
	p.ImportBusybox(t, image)
	return p
})

// binDir holds lockstepd and lockstepctl built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	shared.Close()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runCtl runs lockstepctl in-process, as main does, and returns its exit code, stdout and stderr.
func runCtl(args ...string) (int, string, string) {
	return runCtlContext(context.Background(), args...)
}

func runCtlContext(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := executeContext(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// runCtlIn is runCtl with stdin.
func runCtlIn(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := executeContext(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// built returns the path of the real lockstepd or lockstepctl, built once (with the environment's
// GOFLAGS and CGO_ENABLED, so the project's build tags apply).
func built(t *testing.T, name string) string {
	t.Helper()
	if binDir == "" {
		d, err := os.MkdirTemp("", "lockstepctl-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
		os.Chmod(d, 0o755) // tests run lockstepctl as nobody too
	}
	bin := filepath.Join(binDir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command(goTool(), "build", "-o", bin, "github.com/lockstep/lockstep/cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

func realPodman(t *testing.T) *testenv.Podman {
	t.Helper()
	if testing.Short() {
		t.Skip("real podman: not in -short mode")
	}
	return shared.Get(t, "podman", "runc", "busybox").(*testenv.Podman)
}

func writeApp(t *testing.T, dir, id, body string) {
	t.Helper()
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n%s", id, id, body)
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}
