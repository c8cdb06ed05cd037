package podman

import (
	"context"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/system"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
)

// Event is a container event that may call for a pass.
type Event struct {
	Action    string // died, oom, health_status, ...
	Container string // name
	App       string // io.lockstep.app label ("" for containers lockstep does not manage)
	Health    string // for health_status: healthy, unhealthy, starting
}

// Watch follows podman's container events until ctx ends, calling on for each. The stream can end at
// any time (podman restarted, socket gone): Watch reconnects with backoff (0.5 s doubling to 30 s) and
// calls reconnected after every new stream, since events may have been missed meanwhile and the
// caller must look at everything again. podman delivers events up to about 250 ms late.
func (c *Client) Watch(ctx context.Context, on func(Event), reconnected func()) {
	backoff := 500 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		ok := c.stream(ctx, on, func() {
			if !first {
				reconnected()
			}
			first = false
			backoff = 500 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}

// stream follows one event stream until it ends; false when it could not be opened.
func (c *Client) stream(ctx context.Context, on func(Event), opened func()) bool {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cctx, err := c.ctx(sctx)
	if err != nil {
		return false
	}
	events := make(chan types.Event, 64)
	stop := make(chan bool, 1)
	stream := true
	opts := &system.EventsOptions{Stream: &stream, Filters: map[string][]string{"type": {"container"}}}
	if err := system.Events(cctx, events, stop, opts); err != nil {
		return false
	}
	opened()
	for {
		select {
		case <-ctx.Done():
			stop <- true
			for range events {
			}
			return true
		case e, ok := <-events:
			if !ok {
				return true
			}
			on(Event{Action: string(e.Action), Container: e.Actor.Attributes["name"], App: e.Actor.Attributes["io.lockstep.app"], Health: e.HealthStatus})
		}
	}
}
