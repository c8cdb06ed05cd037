package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/dbusapi"
	"github.com/lockstep/lockstep/httpapi"
	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/systemd"
)

// keepOnBus follows the bus connection: when it is lost (a restarted dbus-daemon), it connects
// again with backoff (0.5 s doubling to 30 s), exports the object and takes the name again. It
// announces nothing on the new connection; ReportChanged comes with the next changed report.
func keepOnBus(ctx context.Context, bus string, srv *dbusapi.Server, log logrus.FieldLogger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-srv.Conn().Context().Done():
		}
		log.Warn("lost the D-Bus connection; reconnecting")
		delay := 500 * time.Millisecond
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			err := reattach(bus, srv)
			if err == nil {
				log.WithField("name", dbusapi.BusName).Info("reconnected to the bus and took the name again")
				break
			}
			delay = min(2*delay, 30*time.Second)
			log.WithError(err).WithField("retry_in", delay.String()).Warn("reconnecting to the bus")
		}
	}
}

func reattach(bus string, srv *dbusapi.Server) error {
	conn, err := dbusapi.Dial(bus)
	if err != nil {
		return err
	}
	if err := srv.Attach(conn); err != nil {
		conn.Close()
		return err
	}
	if err := srv.RequestName(); err != nil {
		conn.Close()
		return err
	}
	return nil
}

// notify sends an sd_notify message; outside systemd it does nothing.
func notify(log logrus.FieldLogger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.WithError(err).Debug("sd_notify")
	}
}

func summary(rep *report.Report, apps int64) string {
	if rep == nil {
		return fmt.Sprintf("idle: %d apps installed, no pass yet", apps)
	}
	failing := map[string]bool{}
	for _, f := range rep.Failures {
		failing[f.App] = true
	}
	return fmt.Sprintf("idle: %d apps, %d failing; pass %d: %d actions, %d failures", len(rep.Apps), len(failing), rep.PassID, len(rep.Actions), len(rep.Failures))
}

// apiListener takes the socket systemd passed (lockstepd.socket), or, when started by hand, opens
// --socket itself (mode 0666, as lockstepd.socket: every request is authorized by the peer's
// credentials, package httpapi).
func apiListener(o *options, log logrus.FieldLogger) (net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for _, l := range ls {
		if l != nil {
			log.WithField("addr", l.Addr().String()).Info("API socket from systemd")
			return l, nil
		}
	}
	path := o.socket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) // a stale socket of an earlier run; the bus name shows no other instance runs
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	os.Chmod(path, 0o666)
	log.WithField("path", path).Info("API socket")
	return l, nil
}

// watchEvents turns podman events about app containers (a death, an OOM kill, a failed health check)
// into passes, without waiting for the timer: level-based, so an event only says "look again".
// Events within 100 ms make one request; the runner coalesces requests that arrive during a pass.
// reconnected, when not nil, is called on every re-established stream before its pass is requested.
func watchEvents(ctx context.Context, pm engine, runner *reconciler.Runner, log logrus.FieldLogger, reconnected func()) {
	event := debounce(100*time.Millisecond, func() { runner.Request("event") })
	relist := debounce(100*time.Millisecond, func() { runner.Request("events-reconnected") })
	pm.Watch(ctx, func(e podman.Event) {
		if e.App == "" {
			return // not an app container (companions are systemd's to restart)
		}
		switch {
		case e.Action == "died", e.Action == "oom", e.Action == "health_status" && e.Health == "unhealthy":
			log.WithFields(logrus.Fields{"app": e.App, "event": e.Action}).Debug("podman event")
			event()
		}
	}, func() {
		log.Info("podman event stream reconnected; looking at everything again")
		if reconnected != nil {
			reconnected()
		}
		relist()
	})
}

// watchUnits asks for a pass when a companion unit stops or fails (systemd restarts a crashed one by
// itself; a stopped or failed one is lockstep's to repair), so repair does not wait for the timer.
func watchUnits(ctx context.Context, scope string, runner *reconciler.Runner, log logrus.FieldLogger) {
	sc := systemd.System
	if scope == "user" {
		sc = systemd.User
	}
	c := systemd.New(sc)
	defer c.Close()
	request := debounce(200*time.Millisecond, func() { runner.Request("unit-event") })
	c.WatchUnits(ctx, func(unit, sub string) {
		if !strings.HasPrefix(unit, "lockstep-") || unit == "lockstep-reconcile.service" || (sub != "failed" && sub != "dead") {
			return
		}
		log.WithFields(logrus.Fields{"unit": unit, "state": sub}).Info("companion unit stopped")
		request()
	})
}

// removeTemps removes the temporary files of atomic writes that an earlier lockstepd left when it
// was killed mid-write (SIGKILL, power loss): in the state dir, and lockstep's own in the unit dirs.
// The old files they were to replace are intact. Called once the bus name shows no other instance
// runs. Hook outputs in app data dirs are not searched (a data dir can be a blockchain).
func removeTemps(o *options, log logrus.FieldLogger) {
	lockstepUnit := func(target string) bool { return strings.HasPrefix(target, "lockstep-") }
	for _, d := range []struct {
		dir   string
		match func(string) bool
	}{{o.stateDir, nil}, {o.quadletDir, lockstepUnit}, {o.unitDir, lockstepUnit}} {
		removed, err := atomicfile.RemoveTemps(d.dir, d.match)
		if err != nil {
			log.WithError(err).WithField("dir", d.dir).Warn("removing temporary files of interrupted writes")
		}
		for _, p := range removed {
			log.WithField("file", p).Info("removed the temporary file of an interrupted write")
		}
	}
}

// engine is what the daemon needs from podman besides the reconciler's Podman: *podman.Client, or
// an in-memory stand-in in the soak test.
type engine interface {
	Connect(ctx context.Context) error
	Watch(ctx context.Context, on func(podman.Event), reconnected func())
	reconciler.HealthChecker
}

var _ engine = (*podman.Client)(nil)

// backend joins the pass queue and the reconciler for the D-Bus API.
type backend struct {
	*reconciler.Runner
	*reconciler.Reconciler
}

// serve is the daemon: D-Bus name, READY after the name, the manifests and a podman probe; passes on
// start-up, D-Bus calls, SIGHUP and the optional interval; an orderly stop on SIGTERM.
func serve(ctx context.Context, o *options, log *logrus.Logger, rec *reconciler.Reconciler, pm engine) int {
	if err := os.MkdirAll(o.runtimeDir, 0o755); err != nil {
		log.WithError(err).Error("creating runtime dir")
		return 1
	}
	conn, err := dbusapi.Dial(o.bus)
	if err != nil {
		log.WithError(err).Errorf("connecting to the %s bus%s", o.bus, busHint(o.bus, err))
		return 1
	}
	runner := reconciler.NewRunner(rec)
	runner.PassTimeout, runner.StopGrace = o.passTimeout, o.stopGrace
	srv, err := dbusapi.Export(conn, backend{runner, rec}, dbusapi.Config{AdminGroup: o.adminGroup, ReadGroup: o.readGroup, Polkit: o.polkit, Log: log})
	if err != nil {
		conn.Close()
		log.WithError(err).Error("exporting the D-Bus API")
		return 1
	}
	defer func() { srv.Conn().Close() }()
	if err := srv.RequestName(); err != nil {
		log.WithError(err).Error("taking the bus name")
		return 1
	}
	removeTemps(o, log)
	busCtx, stopBus := context.WithCancel(context.Background())
	defer stopBus() // before the connection is closed, so that closing it is not taken for a loss
	go keepOnBus(busCtx, o.bus, srv, log)
	var watch func(context.Context, func())
	if o.events {
		// The companion unit dir too: a deleted unit file is written again by the next pass, within
		// about a second, rather than at the timer's (lockstep's own writes bring one no-op pass).
		if watch, err = watchDirs([]string{o.appsDir, o.catalogDir, o.companionDir}); err != nil {
			log.WithError(err).Warn("manifest dirs are not watched; the timer and calls still drive passes")
		}
	}
	var apps atomic.Int64 // installed apps; read by the runner's hooks, written on reload
	if set, err := rec.LoadManifests(); err != nil {
		log.WithError(err).Warn("installed apps cannot be read; passes will report it")
	} else {
		apps.Store(int64(len(set.Apps) + len(set.Invalid)))
	}
	probeCtx, cancel := context.WithTimeout(ctx, min(10*time.Second, o.callTimeout))
	degraded := ""
	if err := pm.Connect(probeCtx); err != nil {
		degraded = " (degraded: podman unreachable)"
		log.WithError(err).Warn("podman is not reachable yet; every pass reports it until it is")
	}
	cancel()

	metrics := httpapi.NewMetrics()
	web := httpapi.New(backend{runner, rec}, httpapi.Groups{Admin: o.adminGroup, Read: o.readGroup}, metrics, log)
	listener, err := apiListener(o, log)
	if err != nil {
		log.WithError(err).Error("opening the API socket")
		return 1
	}
	webCtx, stopWeb := context.WithCancel(context.Background())
	webDone := make(chan struct{})
	go func() {
		defer close(webDone)
		if err := web.Serve(webCtx, listener); err != nil {
			log.WithError(err).Error("API socket")
		}
	}()
	defer func() { stopWeb(); <-webDone }()

	runner.Started = func(trigger string) {
		srv.PassStarted(trigger)
		notify(log, "STATUS=reconciling ("+trigger+")")
	}
	wakeAt := make(chan time.Time, 1) // when a restart held back by backoff is due
	runner.Finished = func(rep *report.Report) {
		srv.PassFinished(rep)
		metrics.Observe(rep)
		select {
		case <-wakeAt:
		default:
		}
		wakeAt <- rec.NextWake()
		notify(log, "STATUS="+summary(rep, apps.Load()))
	}
	notify(log, daemon.SdNotifyReady+"\nSTATUS="+summary(rec.Last(), apps.Load())+degraded)
	log.WithFields(logrus.Fields{"bus": o.bus, "apps": apps.Load()}).Info("lockstepd ready")

	runCtx, stopRunner := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(runCtx); close(done) }()
	runner.Request("startup")
	if o.events {
		go watchEvents(runCtx, pm, runner, log, o.reconnected)
	}
	if watch != nil {
		go watch(runCtx, debounce(200*time.Millisecond, func() { runner.Request("manifests") }))
	}
	if o.events && o.scope != "none" {
		go watchUnits(runCtx, o.scope, runner, log)
	}
	go rec.RunHealthChecks(runCtx, pm, func(app, status string) {
		log.WithFields(logrus.Fields{"app": app, "health": status}).Info("health changed")
		runner.Request("health")
	})

	var watchdog <-chan time.Time
	stalled := false
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		watchdog = t.C
	}
	var interval <-chan time.Time
	if o.interval > 0 {
		t := time.NewTicker(o.interval)
		defer t.Stop()
		interval = t.C
	}
	backoff := time.NewTimer(time.Hour)
	backoff.Stop()
	defer backoff.Stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-watchdog:
			// Test-only fault switch: this file makes lockstepd behave as if hung, so that tests can
			// see systemd's watchdog restart it.
			if _, err := os.Stat(filepath.Join(o.runtimeDir, "test-hang-watchdog")); err == nil {
				continue
			}
			// Fed only while passes make progress: a pass past its deadline and the stop grace
			// ignores its cancellation, and systemd should restart lockstepd.
			if !runner.Progressing(time.Now()) {
				if !stalled {
					stalled = true
					log.Error("the pass in progress is past its deadline and does not end; no longer feeding the watchdog")
				}
				continue
			}
			stalled = false
			notify(log, daemon.SdNotifyWatchdog)
		case <-interval:
			runner.Request("interval")
		case t := <-wakeAt:
			backoff.Stop()
			if !t.IsZero() {
				backoff.Reset(time.Until(t) + 100*time.Millisecond)
			}
		case <-backoff.C:
			runner.Request("backoff")
		case <-hup:
			notify(log, daemon.SdNotifyReloading+"\nSTATUS=reloading manifests")
			if set, err := rec.LoadManifests(); err != nil {
				log.WithError(err).Warn("reloading manifests")
			} else {
				apps.Store(int64(len(set.Apps) + len(set.Invalid)))
			}
			runner.Submit(reconciler.Op{Kind: reconciler.OpReload})
			notify(log, daemon.SdNotifyReady+"\nSTATUS="+summary(rec.Last(), apps.Load()))
		case <-ctx.Done():
			log.WithField("stop_grace", o.stopGrace.String()).Info("stopping: the pass in progress, if any, may finish within the stop grace; then it is cancelled")
			notify(log, daemon.SdNotifyStopping+"\nSTATUS=stopping")
			srv.ShutDown()
			web.ShutDown()
			stopRunner()
			select {
			case <-done:
			case <-time.After(o.stopTimeout):
				log.Errorf("the pass in progress did not finish within --stop-timeout %s; exiting anyway", o.stopTimeout)
				return 1
			}
			log.Info("stopped")
			return 0
		}
	}
}

// busHint says what fixes a session bus that is not there: the user scope's lockstepd serves on the
// user's session bus, which Debian's dbus-user-session starts (a Recommends of the package, so
// apt-get install --no-install-recommends leaves it out: seen on the fresh test hosts).
func busHint(bus string, err error) string {
	if bus != "session" || !(errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "DBUS_SESSION_BUS_ADDRESS is not set")) {
		return ""
	}
	return ": no session bus for this user (Debian: install dbus-user-session, then restart the user's manager: systemctl restart user@$UID.service, or log in again)"
}
