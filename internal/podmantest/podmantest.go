package podmantest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// Podman is the fake. Its zero value is an empty podman with no images; set the fields before the
// first call, or under Mu afterwards.
type Podman struct {
	Mu sync.Mutex
	// Containers are what List returns (copies): Create adds one (state created), Start and Stop
	// set its state to running and exited, Remove deletes it.
	Containers []engine.Container
	// Images present (ImageExists); a successful Pull or Build adds its ref, RemoveImage deletes it.
	Images map[string]bool
	// Fail fails a call by "Op arg" (e.g. "Create web", "Start new-web", "Pull x:1 tls=true",
	// "EnsureNetwork lockstep-web"); the call has no effect.
	Fail map[string]error
	// Hang makes the calls named (by Op: "List", "Stop", ...) block until their context ends and
	// return its error.
	Hang map[string]bool
	// ListErr fails List, after the call is recorded.
	ListErr error
	// Calls are every call but EnsureNetwork's, in order, as "Op arg" ("List " for List); N counts
	// them. With CountOnly only N grows (a soak, whose memory is measured, makes millions).
	Calls     []string
	N         int
	CountOnly bool
	// Networks are the names EnsureNetwork was asked for, in order.
	Networks []string
	// Deadlines are the time left before each call's context deadline when it was made, by "Op arg"
	// (the last such call's), rounded to the second.
	Deadlines map[string]time.Duration
	// Inspected overrides what Inspect returns for a name or id (a container lockstep did not
	// create, with its command, ports and binds); otherwise Inspect describes the container.
	Inspected map[string]*engine.Inspected
	// ID names a new container (default: "new-" + its name).
	ID func(name string) string
}

var _ engine.Podman = (*Podman)(nil)

// call records op arg and returns its scripted failure; with Hang, it waits for ctx first.
func (p *Podman) call(ctx context.Context, op, arg string) error {
	p.Mu.Lock()
	key := op + " " + arg
	p.N++
	if !p.CountOnly {
		p.Calls = append(p.Calls, key)
	}
	if d, ok := ctx.Deadline(); ok {
		if p.Deadlines == nil {
			p.Deadlines = map[string]time.Duration{}
		}
		p.Deadlines[key] = time.Until(d).Round(time.Second)
	}
	hang, err := p.Hang[op], p.Fail[key]
	p.Mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

// CallList returns a copy of Calls.
func (p *Podman) CallList() []string {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	return append([]string(nil), p.Calls...)
}

// Reset forgets the calls made so far.
func (p *Podman) Reset() {
	p.Mu.Lock()
	p.Calls = nil
	p.Mu.Unlock()
}

// find returns the index of the container with this id or name, -1 if none; with Mu held.
func (p *Podman) find(nameOrID string) int {
	for i, c := range p.Containers {
		if c.ID == nameOrID || c.Name == nameOrID {
			return i
		}
	}
	return -1
}

// Container returns a copy of the container with this id or name, and whether there is one.
func (p *Podman) Container(nameOrID string) (engine.Container, bool) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if i := p.find(nameOrID); i >= 0 {
		return p.Containers[i], true
	}
	return engine.Container{}, false
}

func (p *Podman) List(ctx context.Context) ([]engine.Container, error) {
	if err := p.call(ctx, "List", ""); err != nil {
		return nil, err
	}
	p.Mu.Lock()
	defer p.Mu.Unlock()
	out := make([]engine.Container, 0, len(p.Containers))
	for _, c := range p.Containers {
		c.Labels = maps.Clone(c.Labels)
		out = append(out, c)
	}
	return out, p.ListErr
}

func (p *Podman) Inspect(ctx context.Context, id string) (*engine.Inspected, error) {
	if err := p.call(ctx, "Inspect", id); err != nil {
		return nil, err
	}
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if in := p.Inspected[id]; in != nil {
		cp := *in
		return &cp, nil
	}
	i := p.find(id)
	if i < 0 {
		return nil, &engine.APIError{Op: "inspecting container " + id, Status: 404, Message: "no such container", Err: engine.ErrNotFound}
	}
	c := p.Containers[i]
	return &engine.Inspected{ID: c.ID, Name: c.Name, Image: c.Image, Labels: maps.Clone(c.Labels)}, nil
}

func (p *Podman) ImageExists(ctx context.Context, ref string) (bool, error) {
	err := p.call(ctx, "ImageExists", ref)
	p.Mu.Lock()
	defer p.Mu.Unlock()
	return p.Images[ref], err
}

func (p *Podman) setImage(ref string, present bool) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if p.Images == nil {
		p.Images = map[string]bool{}
	}
	if present {
		p.Images[ref] = true
	} else {
		delete(p.Images, ref)
	}
}

func (p *Podman) RemoveImage(ctx context.Context, ref string) error {
	if err := p.call(ctx, "RemoveImage", ref); err != nil {
		return err
	}
	p.setImage(ref, false)
	return nil
}

func (p *Podman) Pull(ctx context.Context, ref string, tls bool, progress io.Writer) error {
	if err := p.call(ctx, "Pull", fmt.Sprintf("%s tls=%v", ref, tls)); err != nil {
		return err
	}
	p.setImage(ref, true)
	return nil
}

func (p *Podman) Build(ctx context.Context, b engine.BuildRequest) error {
	if err := p.call(ctx, "Build", b.Tag); err != nil {
		return err
	}
	p.setImage(b.Tag, true)
	return nil
}

func (p *Podman) Create(ctx context.Context, c spec.CreateRequest) (string, error) {
	if err := p.call(ctx, "Create", c.Name); err != nil {
		return "", err
	}
	p.Mu.Lock()
	defer p.Mu.Unlock()
	id := "new-" + c.Name
	if p.ID != nil {
		id = p.ID(c.Name)
	}
	if p.find(c.Name) >= 0 {
		return "", &engine.APIError{Op: "creating container " + c.Name, Status: 500, Message: "name already in use", Err: engine.ErrNameInUse}
	}
	p.Containers = append(p.Containers, engine.Container{ID: id, Name: c.Name, Image: c.Image, State: "created", Labels: maps.Clone(c.Labels)})
	return id, nil
}

// set sets the state of the container with this id or name.
func (p *Podman) set(op, id, state string) error {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	i := p.find(id)
	if i < 0 {
		return &engine.APIError{Op: op + " container " + id, Status: 404, Message: "no such container", Err: engine.ErrNotFound}
	}
	if state == "" {
		p.Containers = append(p.Containers[:i], p.Containers[i+1:]...)
	} else {
		p.Containers[i].State = state
	}
	return nil
}

func (p *Podman) Start(ctx context.Context, id string) error {
	if err := p.call(ctx, "Start", id); err != nil {
		return err
	}
	return p.set("starting", id, "running")
}

func (p *Podman) Stop(ctx context.Context, id string, t time.Duration) error {
	if err := p.call(ctx, "Stop", id); err != nil {
		return err
	}
	return p.set("stopping", id, "exited")
}

func (p *Podman) Remove(ctx context.Context, id string) error {
	if err := p.call(ctx, "Remove", id); err != nil {
		return err
	}
	return p.set("removing", id, "")
}

// EnsureNetwork is not recorded in Calls (most tests look at container calls only) but in Networks,
// and can fail.
func (p *Podman) EnsureNetwork(ctx context.Context, name, app string) error {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	p.Networks = append(p.Networks, name)
	return p.Fail["EnsureNetwork "+name]
}

// Kill makes the container with this id or name exit, as podman kill (or a crash) would.
func (p *Podman) Kill(nameOrID string) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if i := p.find(nameOrID); i >= 0 {
		p.Containers[i].State = "exited"
	}
}
