package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/lockstep/lockstep/engine"
)

// UnitState is what lockstep reads about a unit (declared by package engine, which the companion
// stage works against).
type UnitState = engine.UnitState

// Scope is the systemd instance to talk to.
type Scope string

// Scopes.
const (
	System Scope = "system"
	User   Scope = "user"
)

// Client talks to one systemd instance, connecting on first use and again after the connection
// breaks (a restarted bus or systemd).
type Client struct {
	scope Scope

	mu   sync.Mutex
	conn *sd.Conn
}

// New returns a client for scope; it connects lazily.
func New(scope Scope) *Client { return &Client{scope: scope} }

// Close drops the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *Client) get(ctx context.Context) (*sd.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.Connected() {
		return c.conn, nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	var conn *sd.Conn
	var err error
	if c.scope == User {
		conn, err = userConnection(ctx)
	} else {
		conn, err = sd.NewSystemConnectionContext(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd (%s): %w", c.scope, err)
	}
	c.conn = conn
	return conn, nil
}

// Reload makes systemd reread unit files (and run generators such as Quadlet's).
func (c *Client) Reload(ctx context.Context) error {
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// ErrJobFailed is wrapped when a start or stop job does not end "done".
var ErrJobFailed = errors.New("job failed")

func wait(ctx context.Context, what, unit string, ch chan string) error {
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: %w: %s", what, unit, ErrJobFailed, res)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start starts unit and waits for the job to finish.
func (c *Client) Start(ctx context.Context, unit string) error {
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	ch := make(chan string, 1)
	if _, err := conn.StartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("starting %s: %w", unit, err)
	}
	return wait(ctx, "starting", unit, ch)
}

// Restart restarts unit and waits for the job to finish.
func (c *Client) Restart(ctx context.Context, unit string) error {
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	ch := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("restarting %s: %w", unit, err)
	}
	return wait(ctx, "restarting", unit, ch)
}

// Stop stops unit and waits for the job to finish.
func (c *Client) Stop(ctx context.Context, unit string) error {
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		var de godbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil // not loaded: nothing runs
		}
		return fmt.Errorf("stopping %s: %w", unit, err)
	}
	return wait(ctx, "stopping", unit, ch)
}

// ResetFailed clears a unit's failed state (and its start rate limit).
func (c *Client) ResetFailed(ctx context.Context, unit string) error {
	conn, err := c.get(ctx)
	if err != nil {
		return err
	}
	if err := conn.ResetFailedUnitContext(ctx, unit); err != nil {
		return fmt.Errorf("reset-failed %s: %w", unit, err)
	}
	return nil
}

// State reads the unit's load and active state, and for services their result and restart count.
func (c *Client) State(ctx context.Context, unit string) (UnitState, error) {
	conn, err := c.get(ctx)
	if err != nil {
		return UnitState{}, err
	}
	p, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, fmt.Errorf("reading %s: %w", unit, err)
	}
	s := UnitState{}
	s.LoadState, _ = p["LoadState"].(string)
	s.ActiveState, _ = p["ActiveState"].(string)
	s.SubState, _ = p["SubState"].(string)
	if s.LoadState == "loaded" {
		if sp, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service"); err == nil {
			s.Result, _ = sp["Result"].(string)
			s.NRestarts, _ = sp["NRestarts"].(uint32)
		}
	}
	return s, nil
}

// userConnection talks to the user's systemd directly on its private socket
// ($XDG_RUNTIME_DIR/systemd/private), so no session bus is needed (a headless node has none); with
// no such socket it falls back to the session bus.
func userConnection(ctx context.Context) (*sd.Conn, error) {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	sock := filepath.Join(dir, "systemd", "private")
	if _, err := os.Stat(sock); err != nil {
		return sd.NewUserConnectionContext(ctx)
	}
	return sd.NewConnection(func() (*godbus.Conn, error) {
		conn, err := godbus.Dial("unix:path="+sock, godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
}

// WatchUnits calls on(unit, subState) for unit state changes that systemd signals, until ctx ends.
// It uses a connection of its own, subscribes to systemd's signals, and reconnects with backoff when
// the connection breaks (a restarted bus or systemd). Changes may be coalesced: it shows states, not
// every transition.
func (c *Client) WatchUnits(ctx context.Context, on func(unit, subState string)) {
	backoff := time.Second
	for ctx.Err() == nil {
		w := New(c.scope)
		conn, err := w.get(ctx)
		if err == nil {
			err = conn.Subscribe()
		}
		if err == nil {
			backoff = time.Second
			updates := make(chan *sd.SubStateUpdate, 256)
			errs := make(chan error, 16)
			conn.SetSubStateSubscriber(updates, errs)
			alive := time.NewTicker(5 * time.Second)
		loop:
			for {
				select {
				case <-ctx.Done():
					break loop
				case u := <-updates:
					on(u.UnitName, u.SubState)
				case <-errs:
				case <-alive.C:
					if !conn.Connected() {
						break loop
					}
				}
			}
			alive.Stop()
		}
		w.Close()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

var _ engine.Systemd = (*Client)(nil)
