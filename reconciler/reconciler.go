package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/internal/beneath"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/reconciler/deadline"
	"github.com/lockstep/lockstep/reconciler/failure"
	"github.com/lockstep/lockstep/reconciler/health"
	"github.com/lockstep/lockstep/reconciler/hooks"
	"github.com/lockstep/lockstep/reconciler/mounts"
	"github.com/lockstep/lockstep/reconciler/plan"
	"github.com/lockstep/lockstep/reconciler/rollback"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Config says where the reconciler finds desired state and keeps its own.
type Config struct {
	AppsDir string // installed apps: one manifest (or symlink to a catalog manifest) per app
	// CatalogDir holds the available apps that OpInstall links into AppsDir.
	CatalogDir string
	StateDir   string // report and adoption records
	// Roots are the data root, the --volume-root dirs and the operator's policy every manifest is
	// loaded under (nil Policy: nothing granted); its NetworkPrefix defaults to NetworkPrefix below.
	Roots manifest.Roots
	// Parallel bounds how many apps of one dependency wave are worked on at once (default 4).
	Parallel int
	Log      logrus.FieldLogger
	Now      func() time.Time
	// FreeBytes reports the space available to unprivileged writers at path (default: statfs).
	FreeBytes func(path string) (uint64, error)
	// ReachGrace is how long a running app may leave a published port unanswered before it is
	// repaired (default ReachGrace; negative: at once).
	ReachGrace time.Duration
	// Companions configures the companion stage; nil leaves companions alone.
	Companions *companions.Config
	// NetworkPrefix starts the names of the networks lockstep manages, one per app (default
	// "lockstep-"). Rootful podman instances share aardvark-dns's per-network state, so tests that run
	// several private podman services give each its own prefix.
	NetworkPrefix string
	// DefaultNetwork, when set (bridge), is the network of containers whose manifest names none,
	// instead of the app networks: for rootless podman 4.3, which cannot start containers on networks
	// it created (docs/compatibility.md). Names between containers and apps then do not resolve.
	DefaultNetwork string
	// Registries is the operator's policy for pulls (images.go); the zero value allows every registry
	// and none without TLS verification.
	Registries RegistryPolicy
	// RollbackSettle is how long an updated app without a health check must keep running before its
	// spec is good (default RollbackSettle; negative: at once). See rollback.go.
	RollbackSettle time.Duration
	// Timeouts bound each podman call of a pass (package deadline).
	Timeouts deadline.Timeouts
	// ReadOnly makes a reconciler that only observes (lockstepctl plan): New creates no state dir,
	// and Pass must not be called.
	ReadOnly bool
	// Host, when set, finds what the host's podman cannot do for the apps (host.go); nil: no check.
	Host HostChecker
}

// Reconciler runs passes. Pass must not be called concurrently; Runner serializes it.
type Reconciler struct {
	cfg    Config
	podman engine.Podman

	manifests *manifest.Cache
	secrets   *secretStore
	// lastCompanionStats counts the last pass's companion file writes, deletes and reloads.
	lastCompanionStats companions.Stats
	// reloadPending: unit files were written but the daemon-reload after them failed (pass goroutine).
	reloadPending bool

	// nameInUseRetry: an install's name stayed taken (nameinuse.go); the pass asks for another soon.
	nameInUseRetry atomic.Bool

	backoff map[string]*plan.Backoff // pass goroutine only
	prints  mounts.Book              // mounted files' fingerprints at each start; pass goroutine only
	reach   map[string]plan.Reach    // pass goroutine only
	// depWaits: dependents waiting for a repaired dependency (plan.AfterRepair); pass goroutine only.
	depWaits map[string]string

	mu       sync.Mutex
	last     *report.Report
	adopted  map[string]plan.Adoption
	nextWake time.Time
	health   *health.Monitor // the health monitor (package health)
	images   imageRecords    // images.go

	rb *rollback.Book // rollback: known-good and failed specs (rollback.go)
}

// New returns a reconciler that starts from the report and adoptions saved in the state dir.
func New(cfg Config, p engine.Podman) (*Reconciler, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = ioDiscard{}
		cfg.Log = l
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NetworkPrefix == "" {
		cfg.NetworkPrefix = spec.NetworkPrefix
	}
	cfg.Roots.NetworkPrefix = cmp.Or(cfg.Roots.NetworkPrefix, cfg.NetworkPrefix)
	if cfg.ReachGrace == 0 {
		cfg.ReachGrace = ReachGrace
	} else if cfg.ReachGrace < 0 {
		cfg.ReachGrace = 0
	}
	if cfg.FreeBytes == nil {
		cfg.FreeBytes = statfsFree
	}
	if !cfg.ReadOnly {
		if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating state dir: %w", err)
		}
	}
	cfg.Timeouts = cfg.Timeouts.WithDefaults()
	if cfg.Companions != nil && cfg.Companions.Systemd != nil {
		cc := *cfg.Companions
		cc.Systemd = deadline.Systemd(cc.Systemd, cfg.Timeouts)
		cfg.Companions = &cc
	}
	r := &Reconciler{cfg: cfg, podman: deadline.Podman(p, cfg.Timeouts), adopted: map[string]plan.Adoption{}, manifests: manifest.NewCache(), secrets: newSecretStore(cfg.StateDir), backoff: map[string]*plan.Backoff{}, reach: map[string]plan.Reach{}, depWaits: map[string]string{},
		health: health.New()}
	last, err := report.LoadReport(cfg.StateDir)
	if err != nil {
		cfg.Log.WithError(err).Warn("ignoring unreadable saved report")
	}
	r.last = last
	// rollback: known-good and failed specs survive a restart (rollback.go).
	// The secret store seals secret values out of rollback.json.
	if r.rb, err = rollback.Load(cfg.StateDir, cfg.Log, r.secrets.Seal, r.secrets.Unseal); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, adoptedFile)); err == nil {
		if err := json.Unmarshal(b, &r.adopted); err != nil {
			return nil, fmt.Errorf("reading %s: %w", adoptedFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading adoptions: %w", err)
	}
	return r, nil
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

const adoptedFile = "adopted.json"

// Last returns the last completed report (the saved one right after a restart), or nil.
func (r *Reconciler) Last() *report.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// DryRun is what a dry run saw and planned.
type DryRun struct {
	Set     *manifest.Set
	Actions []plan.Action
}

// Observe loads the manifests, lists containers and plans exactly as a pass does, changing nothing:
// it observes (observe.go, which only reads) and plans (package plan, pure), and drops the books the
// plan leaves.
func (r *Reconciler) Observe(ctx context.Context) (*DryRun, error) {
	set, err := r.manifests.LoadDir(r.cfg.AppsDir, r.cfg.Roots)
	if err != nil {
		return nil, err
	}
	cs, err := r.podman.List(ctx)
	if err != nil {
		return &DryRun{Set: set}, fmt.Errorf("listing containers: %w", err)
	}
	o := r.observe(ctx, set, cs)
	return &DryRun{Set: set, Actions: plan.Plan(o.desired, &o.Observation).Actions}, nil
}

// Pass runs one reconcile pass and returns its report, which is also saved and becomes Last. A failing
// app is recorded in the report; the pass goes on with the others.
func (r *Reconciler) Pass(ctx context.Context, trigger string) *report.Report {
	r.mu.Lock()
	var id uint64 = 1
	if r.last != nil {
		id = r.last.PassID + 1
	}
	r.mu.Unlock()
	rep := &report.Report{PassID: id, Trigger: trigger, StartedAt: r.cfg.Now().UTC(), CompanionMode: "none"}
	if r.cfg.Companions != nil {
		rep.CompanionMode = r.cfg.Companions.Mode
	}
	log := r.cfg.Log.WithField("pass", id)
	log.WithField("trigger", trigger).Debug("pass started")
	r.pass(ctx, log, rep)
	rep.FinishedAt = r.cfg.Now().UTC()
	sort.SliceStable(rep.Failures, func(i, j int) bool { return rep.Failures[i].App < rep.Failures[j].App })
	rep.Redact(r.Redact) // the backstop: no secret value leaves in a report, whatever formatted it
	report.Clean(rep)    // no control characters from podman or containers; bounded for D-Bus
	if err := report.SaveReport(r.cfg.StateDir, rep); err != nil {
		log.WithError(err).Error("saving report")
	}
	r.mu.Lock()
	r.last = rep
	r.mu.Unlock()
	log.WithFields(logrus.Fields{"actions": len(rep.Actions), "failures": len(rep.Failures),
		"duration": rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond)}).Info("pass finished")
	return rep
}

func (r *Reconciler) pass(ctx context.Context, log logrus.FieldLogger, rep *report.Report) {
	set, err := r.manifests.LoadDir(r.cfg.AppsDir, r.cfg.Roots)
	if err != nil {
		// Nothing is known about the installed set: touch nothing.
		rep.Failures = append(rep.Failures, report.Failure{Error: err.Error(), Class: outcome.Of(err), Subject: outcome.SubjectPass})
		log.WithError(err).Error("loading installed apps")
		return
	}
	for _, p := range set.Problems {
		rep.Failures = append(rep.Failures, failure.Problem(p))
		log.WithField("app", failure.ProblemApp(p)).Warn(p.String())
	}
	cs, err := r.podman.List(ctx)
	if err != nil {
		err = fmt.Errorf("listing containers: %w", err)
		log.WithError(err).Error("observing podman")
		for _, a := range set.Apps {
			rep.Failures = append(rep.Failures, report.Failure{App: a.ID, Error: err.Error(), Class: outcome.Of(err), Subject: outcome.SubjectApp})
			rep.Apps = append(rep.Apps, report.AppStatus{ID: a.ID, State: report.StateUnknown})
		}
		for id := range set.Invalid {
			rep.Apps = append(rep.Apps, report.AppStatus{ID: id, State: report.StateInvalid})
		}
		// Why podman does not answer may be the host's (rootless podman without newuidmap fails
		// on every request): the checker looks itself, its apps known by id only.
		apps := make([]*spec.Desired, 0, len(set.Apps))
		for _, a := range set.Apps {
			apps = append(apps, &spec.Desired{App: a})
		}
		r.checkHost(ctx, apps, rep)
		sortApps(rep.Apps)
		return
	}
	var cp *companions.Plan
	if r.cfg.Companions != nil {
		cp = r.planCompanions(set)
		r.stopGoneCompanions(ctx, cp, rep)
	}
	o := r.observe(ctx, set, cs)
	res := plan.Plan(o.desired, &o.Observation)
	r.keep(log, res)
	r.prepare(log, o, res)
	actions, now, unreachable := res.Actions, o.Now, res.Unreachable
	r.prints.Fold(actions, o.prints) // files mounted read-only from a dependency rewritten: restart (reconciler/mounts)
	results := r.execute(ctx, log, actions)
	var wake time.Time
	restarted := map[string]bool{}
	for _, a := range actions {
		if isRestart(a.Kind) && !a.ConfigChanged && !a.AfterDependency && !restarted[a.App] && a.Blocked == nil {
			restarted[a.App] = true
			r.recordRestart(a.App, now)
		}
		if !a.WaitUntil.IsZero() && (wake.IsZero() || a.WaitUntil.Before(wake)) {
			wake = a.WaitUntil
		}
	}
	r.mu.Lock()
	r.nextWake = wake
	r.mu.Unlock()
	if r.nameInUseRetry.Swap(false) {
		r.wakeBy(now.Add(NameInUseRetry))
	}
	if !res.Wake.IsZero() {
		r.wakeBy(res.Wake) // a dependency awaited, a re-probe (package plan)
	}
	starting := r.probeStarted(ctx, actions, results)
	if len(starting) > 0 {
		r.wakeBy(now.Add(plan.ReprobeMin))
	}
	rows := map[string]*report.AppStatus{}
	var order []string
	failed := map[string]bool{}
	fail := func(a plan.Action, msg string, class outcome.Class) {
		f := failure.Of(a, msg, class)
		key := f.App + "\x00" + f.Error
		if !failed[key] {
			failed[key] = true
			rep.Failures = append(rep.Failures, f)
		}
	}
	for _, a := range actions {
		res := results[actionKey(a)]
		if a.Kind != plan.KindNone && a.Kind != plan.KindHold && a.Kind != plan.KindWait && a.Blocked == nil {
			cause := a.Cause
			if res.note != "" {
				cause += "; " + res.note
			}
			rep.Actions = append(rep.Actions, report.ActionRec{App: a.App, Action: string(a.Kind), Cause: failure.WithMember(a, cause)})
		}
		if res.err != nil {
			fail(a, res.err.Error(), outcome.Of(res.err))
		}
		if a.Blocked != nil {
			fail(a, a.Blocked.Error(), outcome.Of(a.Blocked))
		}
		if !a.WaitUntil.IsZero() || a.WaitDep != "" {
			fail(a, a.Cause, failure.WaitClass(a))
		}
		if a.Kind == plan.KindRemove && a.Desired != nil {
			continue // a stray container of an installed app; the app's own row follows
		}
		st := status(a, res)
		if addr, ok := unreachable[a.Name()]; ok && a.Kind == plan.KindNone {
			st.State = report.StateUnreachable
			fail(a, "running but unreachable: "+addr, outcome.ClassUnreachable)
		}
		if starting[a.Name()] && st.State == report.StateRunning {
			st.State = report.StateStarting
		}
		if h, _ := r.health.Of(a.Name()); a.Kind != plan.KindNone && res.err == nil && res.state == report.StateRunning && a.Desired != nil && a.Desired.Health != nil {
			st.Health = report.HealthStarting // (re)started in this pass: the old container's health says nothing of it
		} else if h != "" {
			st.Health = h
		} else if a.Desired != nil && a.Desired.Health == nil {
			st.Health = report.HealthNone
		}
		row := rows[a.App]
		if row == nil {
			order = append(order, a.App)
			row = &st
			rows[a.App] = row
		} else {
			mergeStatus(row, st)
		}
		if a.Desired != nil && a.Desired.Member != "" {
			row.Containers = append(row.Containers, report.ContainerStatus{Name: a.Desired.Member, State: st.State,
				Health: st.Health, Image: st.Image, ContainerID: st.ContainerID, LastAction: st.LastAction})
		}
	}
	for _, id := range order {
		rep.Apps = append(rep.Apps, *rows[id])
	}
	sortApps(rep.Apps)
	r.finishRollback(o, actions, results, rep) // rollback: start trials, report, save, wake (rollback.go)
	targets := map[string]health.Target{}
	for _, a := range actions {
		if a.Desired == nil || a.Desired.Health == nil {
			continue
		}
		res := results[actionKey(a)]
		running := (a.Kind == plan.KindNone && a.Container != nil && a.Container.State == "running") || res.state == report.StateRunning
		if !running || res.err != nil {
			continue
		}
		h := a.Desired.Health
		// fresh: lockstep (re)started it in this pass, so its start period begins now.
		t := health.Target{App: a.App, Container: a.Name(), Interval: h.Interval.D(), StartPeriod: h.StartPeriod.D(),
			Retries: h.Retries, Started: now, Fresh: a.Kind != plan.KindNone}
		if t.Interval == 0 {
			t.Interval = spec.DefaultHealthInterval
		}
		targets[a.Name()] = t
	}
	r.health.Set(targets)
	r.checkHost(ctx, o.desired, rep) // what podman cannot do for these apps (host.go)
	if cp != nil {
		r.lastCompanionStats = r.companionsStage(ctx, log, cp, rep)
	}
}

// stateRank orders container states from good to bad: an app's row shows its worst container.
var stateRank = map[string]int{report.StateRunning: 0, report.StateStarting: 1, report.StateRemoved: 1, "exited": 2, "stopped": 2, "created": 2,
	report.StateMissing: 3, report.StateUnreachable: 4, report.StateUnknown: 5, report.StateForeign: 6, report.StateInvalid: 7, report.StateFailed: 8}

var healthRank = map[string]int{report.HealthNone: 0, report.HealthHealthy: 1, report.HealthStarting: 2, report.HealthUnknown: 3, report.HealthUnhealthy: 4}

// mergeStatus folds a further container's status into its app's row.
func mergeStatus(row *report.AppStatus, st report.AppStatus) {
	if stateRank[st.State] > stateRank[row.State] {
		row.State = st.State
	}
	if healthRank[st.Health] > healthRank[row.Health] {
		row.Health = st.Health
	}
	if row.LastAction == "" {
		row.LastAction = st.LastAction
	}
	if row.NextAttempt == "" {
		row.NextAttempt = st.NextAttempt
	}
}

func sortApps(s []report.AppStatus) {
	sort.SliceStable(s, func(i, j int) bool { return s[i].ID < s[j].ID })
}

type result struct {
	err         error
	containerID string
	state       string
	note        string // what the action did beyond its planned kind; appended to its reported cause
}

func actionKey(a plan.Action) string {
	k := a.Name() + "/" + string(a.Kind)
	if a.Container != nil {
		k += "/" + a.Container.ID
	}
	return k
}

func status(a plan.Action, res result) report.AppStatus {
	s := report.AppStatus{ID: a.App, LastAction: string(a.Kind), Health: "unknown"}
	if a.Kind == plan.KindNone || a.Kind == plan.KindHold || a.Kind == plan.KindWait {
		s.LastAction = ""
	}
	if a.Desired != nil {
		s.Image = a.Desired.Request.Image
	}
	if !a.WaitUntil.IsZero() {
		s.NextAttempt = a.WaitUntil.UTC().Format(time.RFC3339)
	}
	if c := a.Container; c != nil {
		s.ContainerID, s.State = c.ID, c.State
		if s.Image == "" {
			s.Image = c.Image
		}
	} else {
		s.State = report.StateMissing
	}
	switch {
	case a.Kind == plan.KindHold:
		s.State = report.StateInvalid
	case res.err != nil && a.Kind == plan.KindAdopt:
		s.State = report.StateForeign
	case res.err != nil:
		if s.State == report.StateMissing {
			s.State = report.StateFailed
		}
	case res.state != "":
		s.State = res.state
	}
	if res.containerID != "" {
		s.ContainerID = res.containerID
	}
	return s
}

// execute runs the actions wave by wave, at most Parallel at a time within a wave. An app whose
// dependency failed in this pass is not started.
func (r *Reconciler) execute(ctx context.Context, log logrus.FieldLogger, actions []plan.Action) map[string]result {
	results := map[string]result{}
	failed := map[string]error{}
	var mu sync.Mutex
	sem := make(chan struct{}, r.cfg.Parallel)
	for _, wave := range plan.Order(actions) {
		var wg sync.WaitGroup
		for _, a := range wave {
			if a.Kind == plan.KindNone || a.Kind == plan.KindHold || a.Kind == plan.KindWait {
				continue
			}
			if a.Blocked != nil {
				mu.Lock()
				failed[a.App] = a.Blocked
				mu.Unlock()
				continue
			}
			if a.Desired != nil {
				var blocked error
				mu.Lock()
				for _, dep := range a.Desired.Deps {
					if err := failed[dep]; err != nil {
						blocked = fmt.Errorf("%w: dependency %s failed in this pass", outcome.ErrDependencyFailed, dep)
					}
				}
				if err := failed[a.App]; err != nil && a.Desired.Index > 0 {
					blocked = fmt.Errorf("%w: a container before it in the stack failed in this pass", outcome.ErrDependencyFailed)
				}
				if blocked != nil {
					results[actionKey(a)] = result{err: blocked}
					failed[a.App] = blocked
					mu.Unlock()
					continue
				}
				mu.Unlock()
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(a plan.Action) {
				defer wg.Done()
				defer func() { <-sem }()
				alog := log.WithFields(logrus.Fields{"app": a.App, "action": a.Kind})
				alog.WithField("cause", a.Cause).Info("acting")
				res := r.do(ctx, a)
				if res.err != nil {
					alog.WithError(res.err).Warn("action failed")
				}
				mu.Lock()
				results[actionKey(a)] = res
				if res.err != nil {
					failed[a.App] = res.err
				}
				mu.Unlock()
			}(a)
		}
		wg.Wait()
	}
	return results
}

func (r *Reconciler) do(ctx context.Context, a plan.Action) result {
	switch a.Kind {
	case plan.KindStart:
		err := r.podman.Start(ctx, a.Container.ID)
		if err != nil && a.Container.State == "created" && a.Desired != nil && ctx.Err() == nil {
			// A created container that will not start is wedged: force-recreate it in this action
			// (remove without its volumes, create, start), as KindForceRecreate does; not when the pass
			// is being cancelled (its deadline, a shutdown).
			res := r.install(ctx, a.Desired, a.Container)
			res.note = fmt.Sprintf("start failed (%v), so it was force-recreated", err)
			if res.err != nil {
				res.err = fmt.Errorf("starting failed (%v), then force-recreating: %w", err, res.err)
			}
			return res
		}
		if err != nil {
			return result{err: fmt.Errorf("starting: %w", err)}
		}
		return result{state: report.StateRunning}
	case plan.KindRestart:
		if err := r.podman.Stop(deadline.WithGrace(ctx, graceOf(a.Desired)), a.Container.ID, 0); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return result{err: fmt.Errorf("stopping: %w", err)}
		}
		if err := r.podman.Start(ctx, a.Container.ID); err != nil {
			return result{err: fmt.Errorf("starting: %w", err)}
		}
		r.health.Restarted(a.Name())
		return result{state: report.StateRunning}
	case plan.KindInstall:
		return r.install(ctx, a.Desired, nil)
	case plan.KindRecreate:
		return r.install(ctx, a.Desired, a.Container)
	case plan.KindForceRecreate:
		return r.install(ctx, a.Desired, a.Container)
	case plan.KindRollback: // a.Desired is the app's last good spec (rollback.go)
		return r.install(ctx, a.Desired, a.Container)
	case plan.KindAdopt:
		return r.adopt(ctx, a)
	case plan.KindRemove:
		if err := r.remove(deadline.WithGrace(ctx, graceOf(a.Desired)), a.Container); err != nil {
			return result{err: err}
		}
		r.forget(a.Container.Name)
		return result{state: report.StateRemoved}
	}
	return result{err: fmt.Errorf("unknown action %q", a.Kind)}
}

// graceOf is the stop grace of d's container (unknown without a manifest: 0).
func graceOf(d *spec.Desired) time.Duration {
	if d == nil {
		return 0
	}
	return d.Request.StopTimeout
}

// remove stops c (giving it the grace period it was created with) and removes it, never its volumes.
func (r *Reconciler) remove(ctx context.Context, c *engine.Container) error {
	if c.State == "running" {
		if err := r.podman.Stop(ctx, c.ID, 0); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("stopping old container: %w", err)
		}
	}
	if err := r.podman.Remove(ctx, c.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("removing old container: %w", err)
	}
	return nil
}

// install makes the app's container from nothing, or replaces old. The image is made ready before old
// is touched, so a failed pull or build leaves the running container in place.
func (r *Reconciler) install(ctx context.Context, d *spec.Desired, old *engine.Container) result {
	app := d.App
	if old == nil && app.Requires.DiskGB > 0 && d.Index == 0 {
		if err := r.checkDisk(app); err != nil {
			return result{err: err}
		}
	}
	if err := r.prepareData(d); err != nil {
		return result{err: err}
	}
	if err := r.ensureImage(ctx, d); err != nil {
		return result{err: err}
	}
	for _, n := range append([]string{d.Request.Network}, d.Request.Networks...) {
		if strings.HasPrefix(n, r.cfg.NetworkPrefix) {
			if err := r.podman.EnsureNetwork(ctx, n, strings.TrimSuffix(strings.TrimPrefix(n, r.cfg.NetworkPrefix), spec.ExportsSuffix)); err != nil {
				return result{err: fmt.Errorf("network %s: %w", n, err)}
			}
		}
	}
	if old != nil {
		if err := r.remove(deadline.WithGrace(ctx, graceOf(d)), old); err != nil {
			return result{err: err}
		}
		r.forget(d.Name())
	}
	id, err := r.podman.Create(ctx, d.Request)
	if errors.Is(err, engine.ErrNameInUse) {
		id, err = r.createAfterNameInUse(ctx, d, err) // a name the list did not show (nameinuse.go)
	} else if err != nil {
		err = fmt.Errorf("creating container: %w", err)
	}
	if err != nil {
		return result{err: err}
	}
	if err := r.podman.Start(ctx, id); err != nil {
		return result{containerID: id, state: "created", err: fmt.Errorf("starting: %w", err)}
	}
	return result{containerID: id, state: report.StateRunning}
}

// ErrInsufficientDisk is returned by the disk preflight (errors.Is); the error itself reads
// FILE: app.requires.disk_gb: REASON.
var ErrInsufficientDisk = errors.New("not enough disk space")

type diskError struct{ msg string }

func (e *diskError) Error() string { return e.msg }
func (e *diskError) Unwrap() error { return ErrInsufficientDisk }

// checkDisk compares app's disk need with the free space at its data dir (or the nearest parent that
// exists), both in GB as the manifest declares it, the free space exact to the byte.
func (r *Reconciler) checkDisk(app *manifest.Loaded) error {
	dir := r.cfg.Roots.AppData(app.ID)
	p := dir
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	free, err := r.cfg.FreeBytes(p)
	if err != nil {
		return fmt.Errorf("%s: app.requires.disk_gb: checking free disk space at %s: %w", app.File, p, err)
	}
	if need := uint64(app.Requires.DiskGB * 1e9); free < need {
		return &diskError{fmt.Sprintf("%s: app.requires.disk_gb: needs %s GB free at %s, which has %s GB free",
			app.File, strconv.FormatFloat(app.Requires.DiskGB, 'f', -1, 64), p, ExactGB(free))}
	}
	return nil
}

// ExactGB writes a byte count in GB (10^9 bytes) without rounding: 67108864 is "0.067108864".
func ExactGB(b uint64) string {
	s := fmt.Sprintf("%010d", b)
	s = strings.TrimRight(s[:len(s)-9]+"."+s[len(s)-9:], "0")
	s = strings.TrimLeft(strings.TrimSuffix(s, "."), "0")
	if s == "" || s[0] == '.' {
		s = "0" + s
	}
	return s
}

func statfsFree(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// prepareData creates the app's data dir (hooks.DataDirMode) and the bind-mount sources inside the
// allowed roots that do not exist yet (podman refuses a missing bind source), relative to an open
// handle on their root and following no symlink: a source whose path runs through a symlink (a
// container that owns a directory on the way could point it anywhere, / included) is refused
// before anything is created or mounted. It never removes or empties anything.
func (r *Reconciler) prepareData(d *spec.Desired) error {
	data, err := beneath.Open(r.cfg.Roots.AppData(d.App.ID), hooks.DataDirMode(d.App))
	if err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	data.Close()
	for _, v := range d.Request.Volumes {
		if err := prepareSource(r.cfg.Roots, d.App.ID, v.Source); err != nil {
			return fmt.Errorf("bind mount source %s: %w", v.Source, err)
		}
	}
	return nil
}

// Redact hides every secret value the store knows in msg (lockstepd's log hook, the report pass).
func (r *Reconciler) Redact(msg string) string { return r.secrets.Redact(msg) }

// prepareSource checks and makes one bind-mount source beneath the root it lies in.
func prepareSource(roots manifest.Roots, app, src string) error {
	for _, root := range append(append([]string{roots.DataRoot}, roots.Extra...), roots.Policy.VolumeRoots(app)...) {
		rel, err := filepath.Rel(root, src)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		d, err := beneath.Open(root, 0o711)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.EnsurePath(rel, 0o755)
	}
	return fmt.Errorf("not inside the data root or an allowed root")
}

// adopt takes over a container with the app's name that lockstep did not create, if it matches the
// manifest (image, command, published ports and bind mounts); otherwise it is left untouched.
func (r *Reconciler) adopt(ctx context.Context, a plan.Action) result {
	in, err := r.podman.Inspect(ctx, a.Container.ID)
	if err != nil {
		return result{err: fmt.Errorf("inspecting container %s: %w", a.Container.Name, err)}
	}
	if why := mismatch(in, &a.Desired.Request, a.Desired.App.Members()[a.Desired.Index].Command); why != "" {
		return result{err: fmt.Errorf("container %s was not created by lockstep and does not match the manifest (%s); it is left untouched: remove or rename it to let lockstep install the app", a.Container.Name, why)}
	}
	r.mu.Lock()
	r.adopted[a.Name()] = plan.Adoption{App: a.App, ContainerID: in.ID, Scheme: spec.HashScheme, Hash: a.Desired.Hash()}
	err = r.saveAdoptedLocked()
	r.mu.Unlock()
	if err != nil {
		return result{err: err}
	}
	res := result{containerID: in.ID, state: a.Container.State}
	if a.Container.State != "running" {
		if err := r.podman.Start(ctx, in.ID); err != nil {
			return result{containerID: in.ID, err: fmt.Errorf("starting adopted container: %w", err)}
		}
		res.state = report.StateRunning
	}
	return res
}

// mismatch says how in differs from want, quoting words (the manifest's command), never secrets.
func mismatch(in *engine.Inspected, want *spec.CreateRequest, words []string) string {
	if normImage(in.Image) != normImage(want.Image) {
		return fmt.Sprintf("image %s, manifest wants %s", in.Image, want.Image)
	}
	if len(want.Command) > 0 && strings.Join(in.Command, "\x00") != strings.Join(want.Command, "\x00") {
		return fmt.Sprintf("command %q, manifest wants %q", in.Command, words)
	}
	var have, wantPorts []string
	for _, p := range in.Ports {
		have = append(have, p.String())
	}
	for _, p := range want.Ports {
		if p.HostPort != 0 {
			wantPorts = append(wantPorts, p.String())
		}
	}
	sort.Strings(have)
	sort.Strings(wantPorts)
	if strings.Join(have, ",") != strings.Join(wantPorts, ",") {
		return fmt.Sprintf("ports [%s], manifest wants [%s]", strings.Join(have, " "), strings.Join(wantPorts, " "))
	}
	binds := map[string]bool{}
	for _, b := range in.Binds {
		binds[b] = true
	}
	for _, v := range want.Volumes {
		if !binds[v.Source+":"+v.Target] {
			return fmt.Sprintf("no bind mount %s:%s", v.Source, v.Target)
		}
	}
	return ""
}

func normImage(s string) string {
	if n, err := reference.ParseNormalizedNamed(s); err == nil {
		return reference.TagNameOnly(n).String()
	}
	return s
}

func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.adopted[name]; ok {
		delete(r.adopted, name)
		if err := r.saveAdoptedLocked(); err != nil {
			r.cfg.Log.WithError(err).Error("saving adoptions")
		}
	}
}

func (r *Reconciler) saveAdoptedLocked() error {
	b, err := json.MarshalIndent(r.adopted, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(r.cfg.StateDir, adoptedFile), b, 0o644); err != nil {
		return fmt.Errorf("saving adoptions: %w", err)
	}
	return nil
}
