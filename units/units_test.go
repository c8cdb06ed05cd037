package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// copyUnits copies the units of dir into a temp dir, with the installed binary paths replaced by
// executables that exist (verify checks them).
func copyUnits(t *testing.T, dir string, names []string) string {
	t.Helper()
	tmp := t.TempDir()
	fake := filepath.Join(tmp, "lockstepd")
	os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/bin/lockstepd", fake)
		os.WriteFile(filepath.Join(tmp, n), []byte(s), 0o644)
	}
	return tmp
}

var names = []string{"lockstepd.service", "lockstepd.socket", "lockstep-reconcile.timer", "lockstep-reconcile.service"}

func TestVerifySystemUnits(t *testing.T) {
	testenv.Need(t, "systemd-analyze", "busctl", "curl")
	tmp := copyUnits(t, ".", names)
	args := []string{"verify", "--man=no"}
	for _, n := range names {
		args = append(args, filepath.Join(tmp, n))
	}
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestVerifyUserUnits(t *testing.T) {
	testenv.Need(t, "systemd-analyze", "curl")
	tmp := copyUnits(t, "user", names)
	rt := t.TempDir()
	args := []string{"verify", "--man=no", "--user"}
	for _, n := range names {
		args = append(args, filepath.Join(tmp, n))
	}
	cmd := exec.Command("systemd-analyze", args...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify --user: %v\n%s", err, out)
	}
}

// TestSecurityExposure prints systemd's exposure score of lockstepd.service and holds it to the goal.
func TestSecurityExposure(t *testing.T) {
	testenv.Need(t, "systemd-analyze")
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=45", "lockstepd.service").CombinedOutput()
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Overall exposure level") {
			line = l
		}
	}
	t.Log(line)
	if err != nil || line == "" {
		t.Fatalf("exposure above 4.5 or not measured: %v\n%s", err, out)
	}
}

func TestDBusFilesAreWellFormed(t *testing.T) {
	b, _ := os.ReadFile("org.lockstep.Reconciler1.service")
	for _, want := range []string{"[D-BUS Service]", "Name=org.lockstep.Reconciler1", "Exec=/bin/false", "SystemdService=lockstepd.service"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("activation file lacks %s", want)
		}
	}
	if out, err := exec.Command("xmllint", "--noout", "org.lockstep.Reconciler1.conf").CombinedOutput(); err != nil && !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("policy XML: %v %s", err, out)
	}
}

// After a reboot every container is down until the first pass: the timer's first pass comes 5 s after
// boot, its interval stays 30 s (both the system and the user timer).
func TestReconcileTimerFirstPassSoonAfterBoot(t *testing.T) {
	for _, p := range []string{"lockstep-reconcile.timer", "user/lockstep-reconcile.timer"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		for _, want := range []string{"OnBootSec=5s", "OnActiveSec=30s", "OnUnitActiveSec=30s"} {
			if !lines[want] {
				t.Errorf("%s: no line %q", p, want)
			}
		}
	}
}
