package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A unit file of a companion's name that lockstep did not write (no header) is reported and left
// as it is: never overwritten, never started.
func TestCompanionNeverOverwritesAUnitWithoutLockstepsHeader(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "")})
	dir := filepath.Join(t.TempDir(), "quadlet")
	os.MkdirAll(dir, 0o755)
	theirs := "[Container]\nImage=admin/own:1\n"
	file := filepath.Join(dir, "lockstep-a-ui.container")
	os.WriteFile(file, []byte(theirs), 0o644)
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	rep := r.Pass(context.Background(), "test")
	if f := failures(rep)["companion a-ui"]; !strings.Contains(f, "was not written by lockstep (no lockstep header): left alone") {
		t.Fatalf("failures %+v", rep.Failures)
	}
	if b, _ := os.ReadFile(file); string(b) != theirs {
		t.Fatalf("the admin's unit was overwritten:\n%s", b)
	}
	for _, c := range sd.take() {
		if strings.Contains(c, "a-ui") {
			t.Fatalf("systemd was asked to %s", c)
		}
	}
}

// A companion's mount source whose path runs through a symlink (the app's container pointed a
// directory at /) is refused: its unit is not written, so podman never mounts what it points at.
func TestCompanionMountSourceThroughASymlinkIsRefused(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/a:1": true}}
	r := newTestReconciler(t, p, map[string]string{"a": companionYAML("a-ui", "      mounts: [{from: a, path: public/etc, target: /host}]\n")})
	data := r.cfg.Roots.AppData("a")
	os.MkdirAll(data, 0o700)
	if err := os.Symlink("/", filepath.Join(data, "public")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "quadlet")
	sd := &fakeSystemd{dir: dir, suffix: ".container", active: map[string]string{}}
	r.cfg.Companions = &CompanionConfig{Mode: ModeQuadlet, Dir: dir, WantedBy: "multi-user.target", Systemd: sd}
	rep := r.Pass(context.Background(), "test")
	if f := failures(rep)["companion a-ui"]; !strings.Contains(f, "runs through a symlink") {
		t.Fatalf("failures %+v", rep.Failures)
	}
	if _, err := os.Stat(filepath.Join(dir, "lockstep-a-ui.container")); err == nil {
		t.Fatal("the unit was written")
	}
}
