package podmantest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// The fake keeps state as podman would: what Create makes List shows, Start and Stop change its
// state, Remove deletes it, a name in use is refused, a failed call changes nothing, a pull makes the
// image present, a hung call ends with its context; every call but EnsureNetwork is recorded.
func TestFakeKeepsState(t *testing.T) {
	ctx := context.Background()
	p := &Podman{Fail: map[string]error{"Start new-b": errors.New("no")}}
	id, err := p.Create(ctx, spec.CreateRequest{Name: "a", Image: "x:1", Labels: map[string]string{"k": "v"}})
	if err != nil || id != "new-a" {
		t.Fatal(id, err)
	}
	if _, err := p.Create(ctx, spec.CreateRequest{Name: "a"}); !errors.Is(err, engine.ErrNameInUse) {
		t.Fatalf("second create: %v", err)
	}
	p.Create(ctx, spec.CreateRequest{Name: "b"})
	p.Start(ctx, "new-a")
	if err := p.Start(ctx, "new-b"); err == nil {
		t.Fatal("scripted failure not returned")
	}
	cs, _ := p.List(ctx)
	if len(cs) != 2 || cs[0].State != "running" || cs[1].State != "created" || cs[0].Labels["k"] != "v" {
		t.Fatalf("list %+v", cs)
	}
	cs[0].Labels["k"] = "changed" // a copy
	if c, _ := p.Container("a"); c.Labels["k"] != "v" {
		t.Fatal("List handed out the fake's own labels")
	}
	p.Kill("a")
	if c, _ := p.Container("new-a"); c.State != "exited" {
		t.Fatalf("killed: %s", c.State)
	}
	p.Stop(ctx, "a", 0)
	if err := p.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(ctx, "a"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := p.Inspect(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.ImageExists(ctx, "y:1"); ok {
		t.Fatal("image present before its pull")
	}
	p.Pull(ctx, "y:1", true, nil)
	if ok, _ := p.ImageExists(ctx, "y:1"); !ok {
		t.Fatal("image absent after its pull")
	}
	p.EnsureNetwork(ctx, "lockstep-a", "a")
	want := "Create a,Create a,Create b,Start new-a,Start new-b,List ,Stop a,Remove a,Remove a,Inspect b,ImageExists y:1,Pull y:1 tls=true,ImageExists y:1"
	if got := strings.Join(p.CallList(), ","); got != want || p.N != 13 || len(p.Networks) != 1 {
		t.Fatalf("calls %s (%d), networks %v", got, p.N, p.Networks)
	}
	p.Hang = map[string]bool{"List": true}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.List(cctx); !errors.Is(err, context.DeadlineExceeded) || p.Deadlines["List "] != 0 {
		t.Fatalf("hung list: %v, deadline %s", err, p.Deadlines["List "])
	}
}
