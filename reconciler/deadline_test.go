package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
)

// hangingPodman never answers List or Stop until its context ends.
type hangingPodman struct {
	fakePodman
	stopDeadline time.Duration
}

func (h *hangingPodman) List(ctx context.Context) ([]Container, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hangingPodman) Stop(ctx context.Context, id string, t time.Duration) error {
	if d, ok := ctx.Deadline(); ok {
		h.stopDeadline = time.Until(d).Round(time.Second)
	}
	return nil
}

// Every call has its deadline; one cut short is a timeout naming the call, classified as such, and a
// pass cancelled by the stop classifies its calls as cancelled.
func TestCallDeadlinesAndClasses(t *testing.T) {
	h := &hangingPodman{}
	p := timed{h, Timeouts{Call: 200 * time.Millisecond, Pull: time.Hour}}
	t0 := time.Now()
	_, err := p.List(context.Background())
	if !errors.Is(err, ErrTimeout) || err.Error() != "timed out: podman list gave no answer within 200ms" || classOf(err) != ClassTimeout {
		t.Fatalf("List: %v (class %q)", err, classOf(err))
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("List returned after %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := p.List(ctx); !errors.Is(err, ErrCancelled) || classOf(err) != ClassCancelled {
		t.Fatalf("List in a cancelled pass: %v", err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer pcancel()
	if _, err := p.List(pctx); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "the pass ran past its deadline") {
		t.Fatalf("List past the pass deadline: %v", err)
	}
	// A stop: the call deadline plus the container's grace (known from its manifest, else the
	// assumed longest).
	p.t.Call = time.Minute
	p.Stop(withGrace(context.Background(), 30*time.Second), "c", 0)
	if h.stopDeadline != 90*time.Second {
		t.Fatalf("stop deadline %s, want 1m30s", h.stopDeadline)
	}
	p.Stop(context.Background(), "c", 0)
	if h.stopDeadline != time.Minute+unknownGrace {
		t.Fatalf("stop deadline without a grace %s", h.stopDeadline)
	}
	if classOf(errors.New("boom")) != "" {
		t.Fatal("an unclassified error got a class")
	}
}

// A pass against a podman that never answers reports within the call deadline, each app failing
// with a classified timeout.
func TestPassAgainstAHungPodmanReports(t *testing.T) {
	r := newTestReconciler(t, &hangingPodman{}, map[string]string{"a": "", "b": ""})
	r.podman = timed{r.podman.(timed).p, Timeouts{Call: 200 * time.Millisecond, Pull: time.Hour}}
	t0 := time.Now()
	rep := r.Pass(context.Background(), "test")
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("pass took %s", d)
	}
	if len(rep.Failures) != 2 {
		t.Fatalf("failures %+v", rep.Failures)
	}
	for _, f := range rep.Failures {
		if f.Class != ClassTimeout || !strings.Contains(f.Error, "timed out: podman list gave no answer within 200ms") {
			t.Fatalf("failure %+v", f)
		}
	}
}

// hangingSystemd never answers.
type hangingSystemd struct{ fakeSystemd }

func (h *hangingSystemd) State(ctx context.Context, u string) (engine.UnitState, error) {
	<-ctx.Done()
	return engine.UnitState{}, ctx.Err()
}

func (h *hangingSystemd) Stop(ctx context.Context, u string) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestSystemdCallDeadlines(t *testing.T) {
	s := timedSystemd{&hangingSystemd{}, Timeouts{Call: 100 * time.Millisecond, Pull: time.Hour}}
	if _, err := s.State(context.Background(), "lockstep-x.service"); !errors.Is(err, ErrTimeout) ||
		err.Error() != "timed out: systemd state of lockstep-x.service gave no answer within 100ms" {
		t.Fatalf("State: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(ctx, "lockstep-x.service"); classOf(err) != ClassCancelled {
		t.Fatalf("Stop in a cancelled pass: %v", err)
	}
	// New wraps the companions' systemd.
	r, err := New(Config{StateDir: t.TempDir(), Companions: &CompanionConfig{Systemd: &hangingSystemd{}}}, &fakePodman{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cfg.Companions.Systemd.(timedSystemd); !ok {
		t.Fatalf("companions' systemd is %T", r.cfg.Companions.Systemd)
	}
}
