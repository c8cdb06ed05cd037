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

// Backoff between attempts to open the event stream: 0.5 s doubling to WatchMaxBackoff. It is short
// because a stream that opens after podman was away must bring a pass soon (the start-up pass
// failed, or events were missed); a failed attempt against a local socket costs next to nothing.
const (
	watchMinBackoff = 500 * time.Millisecond
	WatchMaxBackoff = time.Second
)

// Watch follows podman's container events until ctx ends, calling on for each. The stream can end at
// any time (podman restarted, socket gone): Watch reconnects with backoff and calls reconnected
// whenever a stream opens after an attempt that failed or a stream that ended, since events may have
// been missed meanwhile (or, podman being down at start-up, every pass so far failed) and the caller
// must look at everything again. podman delivers events up to about 250 ms late.
func (c *Client) Watch(ctx context.Context, on func(Event), reconnected func()) {
	backoff := watchMinBackoff
	missed := false // a stream that opens now follows a failure or an ended stream
	for ctx.Err() == nil {
		ok := c.stream(ctx, on, func() {
			if missed {
				reconnected()
			}
			backoff = watchMinBackoff
		})
		if ctx.Err() != nil {
			return
		}
		missed = true
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, WatchMaxBackoff)
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
	// The bindings start a goroutine that closes the response body when stop yields; closing stop
	// on every return ends it, also when the stream ended by itself (it used to wait forever then,
	// one goroutine leaked per reconnect).
	stop := make(chan bool)
	defer close(stop)
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
