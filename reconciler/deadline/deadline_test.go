package deadline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/podmantest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/spec"
)

var classOf = outcome.Of

// Every call has its deadline; one cut short is a timeout naming the call, classified as such, and a
// pass cancelled by the stop classifies its calls as cancelled.
func TestCallDeadlinesAndClasses(t *testing.T) {
	h := &podmantest.Podman{Hang: map[string]bool{"List": true, "Create": true}} // never answers List or Create
	p := timed{h, Timeouts{Call: 200 * time.Millisecond, Pull: time.Hour}}
	t0 := time.Now()
	_, err := p.List(context.Background())
	if !errors.Is(err, outcome.ErrTimeout) || err.Error() != "timed out: podman list gave no answer within 200ms" || classOf(err) != outcome.ClassTimeout {
		t.Fatalf("List: %v (class %q)", err, classOf(err))
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("List returned after %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := p.List(ctx); !errors.Is(err, outcome.ErrCancelled) || classOf(err) != outcome.ClassCancelled {
		t.Fatalf("List in a cancelled pass: %v", err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer pcancel()
	if _, err := p.List(pctx); !errors.Is(err, outcome.ErrTimeout) || !strings.Contains(err.Error(), "the pass ran past its deadline") {
		t.Fatalf("List past the pass deadline: %v", err)
	}
	// A stop: the call deadline plus the container's grace (known from its manifest, else the
	// assumed longest).
	p.t.Call = time.Minute
	p.Stop(WithGrace(context.Background(), 30*time.Second), "c", 0)
	if d := h.Deadlines["Stop c"]; d != 90*time.Second {
		t.Fatalf("stop deadline %s, want 1m30s", d)
	}
	p.Stop(context.Background(), "c", 0)
	if d := h.Deadlines["Stop c"]; d != time.Minute+unknownGrace {
		t.Fatalf("stop deadline without a grace %s", d)
	}
	p.Pull(context.Background(), "x", true, nil)
	if d := h.Deadlines["Pull x tls=true"]; d != time.Hour {
		t.Fatalf("pull deadline %s, want the pull timeout", d)
	}
	p.t.Call = 100 * time.Millisecond
	if _, err := p.Create(context.Background(), spec.CreateRequest{}); !strings.Contains(err.Error(), "podman create gave no answer within 100ms") {
		t.Fatalf("Create: %v", err)
	}
	if classOf(errors.New("boom")) != outcome.ClassFailed || classOf(nil) != "" {
		t.Fatal("an unclassified error is not of class failed")
	}
}

// hangingSystemd never answers.
type hangingSystemd struct{ engine.Systemd }

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
	if _, err := s.State(context.Background(), "lockstep-x.service"); !errors.Is(err, outcome.ErrTimeout) ||
		err.Error() != "timed out: systemd state of lockstep-x.service gave no answer within 100ms" {
		t.Fatalf("State: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(ctx, "lockstep-x.service"); classOf(err) != outcome.ClassCancelled {
		t.Fatalf("Stop in a cancelled pass: %v", err)
	}
}
