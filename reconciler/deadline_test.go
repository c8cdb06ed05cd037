package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/deadline"
)

// A pass against a podman that never answers reports within the call deadline, each app failing
// with a classified timeout.
func TestPassAgainstAHungPodmanReports(t *testing.T) {
	h := &fakePodman{Hang: map[string]bool{"List": true}} // never answers List
	r := newTestReconciler(t, h, map[string]string{"a": "", "b": ""})
	r.podman = deadline.Podman(h, deadline.Timeouts{Call: 200 * time.Millisecond, Pull: time.Hour})
	t0 := time.Now()
	rep := r.Pass(context.Background(), "test")
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("pass took %s", d)
	}
	if len(rep.Failures) != 2 {
		t.Fatalf("failures %+v", rep.Failures)
	}
	for _, f := range rep.Failures {
		if f.Class != outcome.ClassTimeout || !strings.Contains(f.Error, "timed out: podman list gave no answer within 200ms") {
			t.Fatalf("failure %+v", f)
		}
	}
}

// New wraps the companions' systemd in deadlines.
func TestNewBoundsTheCompanionsSystemd(t *testing.T) {
	r, err := New(Config{StateDir: t.TempDir(), Companions: &CompanionConfig{Systemd: &fakeSystemd{}}}, &fakePodman{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cfg.Companions.Systemd.(*fakeSystemd); ok {
		t.Fatal("the companions' systemd has no deadlines")
	}
}
