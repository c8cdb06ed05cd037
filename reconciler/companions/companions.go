package companions

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/atomicfile"
	"github.com/lockstep/lockstep/internal/beneath"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/quadlet"
	"github.com/lockstep/lockstep/reconciler/probe"
	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Companion modes.
const (
	ModeQuadlet = "quadlet" // .container files for podman's Quadlet generator
	ModeService = "service" // plain .service units that run podman (hosts without a generator)
)

// Config configures the companion stage; a nil *Config disables it.
type Config struct {
	Mode      string // ModeQuadlet or ModeService
	Dir       string // where unit files go: the Quadlet dir, or a systemd unit dir
	Generator string // the Quadlet generator binary, for dry-runs that explain a unit that did not load
	WantedBy  string // multi-user.target (system) or default.target (user)
	Systemd   engine.Systemd
	// written remembers the content lockstep last wrote to each unit file (its sha256), so a file
	// deleted behind lockstep's back and written again identical reloads without restarting the unit.
	written map[string][32]byte
}

// Stats counts what a companion stage did to the host, for tests and benchmarks.
type Stats struct {
	Writes, Deletes, Reloads int
}

type companion struct {
	app  string
	unit quadlet.Unit
	file string // base name of the unit file
	name string // systemd unit name
	err  error  // the companion's entry did not resolve: reported, its unit left as it is
	// probes maps a published container port to the path its readiness GET asks (manifest probes)
	probes map[uint16]string
}

func (cc *Config) fileName(id string) string {
	if cc.Mode == ModeService {
		return quadlet.ServiceFile(id)
	}
	return quadlet.ContainerFile(id)
}

func (cc *Config) render(u quadlet.Unit) ([]byte, error) {
	if cc.Mode == ModeService {
		return quadlet.RenderService(u)
	}
	return quadlet.RenderContainer(u)
}

// ownedUnits lists the unit files in dir that lockstep wrote (they start with quadlet.Header).
func ownedUnits(dir, suffix string) (map[string]bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "lockstep-") || !strings.HasSuffix(n, suffix) || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		line, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		if line == quadlet.Header {
			out[n] = true
		}
	}
	return out, nil
}

// Plan is what the companion stage works from, computed before the apps stage.
type Plan struct {
	cc     *Config
	roots  manifest.Roots
	suffix string
	want   []companion
	gone   []string          // owned files no installed app wants (and not held)
	goneOf map[string]string // gone file -> the app its label names
	err    error
}

// NewPlan lists the companion units the installed apps want and the owned unit files no app wants
// (companions of held, invalid apps keep theirs). roots give the apps' data dirs.
func NewPlan(cc *Config, set *manifest.Set, roots manifest.Roots) *Plan {
	p := &Plan{cc: cc, roots: roots, suffix: ".container", goneOf: map[string]string{}}
	if cc.Mode == ModeService {
		p.suffix = ".service"
	}
	owned, err := ownedUnits(cc.Dir, p.suffix)
	if err != nil {
		p.err = fmt.Errorf("reading companion dir %s: %w", cc.Dir, err)
		return p
	}
	wanted := map[string]bool{}
	for _, app := range set.Apps {
		for i, c := range app.Companions {
			u, err := quadlet.CompanionUnit(app, i, roots, set.Providers, cc.WantedBy)
			if err != nil {
				u = quadlet.Unit{ID: c.ID, App: app.ID}
			}
			cp := companion{app: app.ID, unit: u, file: cc.fileName(c.ID), name: quadlet.ServiceFile(c.ID), err: err, probes: map[uint16]string{}}
			for _, pr := range c.Probes {
				cp.probes[uint16(pr.Port)] = pr.Path
			}
			p.want = append(p.want, cp)
			wanted[cp.file] = true
		}
	}
	for f := range owned {
		if wanted[f] {
			continue
		}
		// Companions of held (invalid) apps keep their units: we cannot know what they should be.
		app := companionApp(cc.Dir, f)
		if set.Invalid[app] {
			continue
		}
		p.gone = append(p.gone, f)
		p.goneOf[f] = app
	}
	sort.Strings(p.gone)
	return p
}

func unitOf(file, suffix string) (unit, id string) {
	base := strings.TrimSuffix(file, suffix)
	return base + ".service", strings.TrimPrefix(base, "lockstep-")
}

// StopGone stops the companions of apps that are no longer installed, before their apps' containers
// go: a companion left running would be restarted by Restart=always.
func (p *Plan) StopGone(ctx context.Context, rep *report.Report) {
	for _, f := range p.gone {
		unit, id := unitOf(f, p.suffix)
		if err := p.cc.Systemd.Stop(ctx, unit); err != nil {
			rep.Failures = append(rep.Failures, failure(id, p.goneOf[f], fmt.Sprintf("stopping %s: %v", unit, err), outcome.Of(err)))
		}
	}
}

// Apply brings the companion units in line with the installed apps, after the apps stage: delete the
// files of companions already stopped, write changed files, one daemon-reload if anything changed on
// disk (or a failed one left systemd behind them: *reloadPending, the caller's memory of that across
// passes), check the changed units loaded, start what is not active. Every result goes into the
// report; nothing stops the pass. wake is when a pass should come again (a companion waits for a
// mount source), zero for no such need.
func (p *Plan) Apply(ctx context.Context, log logrus.FieldLogger, rep *report.Report, now time.Time, reloadPending *bool) (st Stats, wake time.Time) {
	cc := p.cc
	fail := func(id, app, state string, err error) {
		rep.Failures = append(rep.Failures, failure(id, app, err.Error(), outcome.Of(err)))
		rep.Companions = append(rep.Companions, report.AppStatus{ID: id, App: app, State: state})
		log.WithField("companion", id).WithError(err).Warn("companion")
	}
	if p.err != nil {
		fail("", "", "unknown", p.err)
		return st, wake
	}
	if err := os.MkdirAll(cc.Dir, 0o755); err != nil {
		fail("", "", "unknown", fmt.Errorf("companion dir: %w", err))
		return st, wake
	}
	want := p.want
	// 1. Companions of removed apps were stopped before the apps stage; now their files go.
	for _, f := range p.gone {
		_, id := unitOf(f, p.suffix)
		if failed(rep, id) {
			continue // the stop failed: keep the file, so the unit keeps its stop commands
		}
		if err := os.Remove(filepath.Join(cc.Dir, f)); err != nil {
			fail(id, p.goneOf[f], "unknown", fmt.Errorf("deleting %s: %w", f, err))
			continue
		}
		st.Deletes++
		rep.Actions = append(rep.Actions, report.ActionRec{App: id, Action: "remove-companion", Cause: "its app is no longer installed"})
		rep.Companions = append(rep.Companions, report.AppStatus{ID: id, App: p.goneOf[f], State: report.StateRemoved, LastAction: "remove"})
	}
	// 2. Write what is missing or changed. A companion whose bind-mount source does not exist yet
	// (lnd's TLS certificate before lnd wrote it) waits: podman would refuse to start it, and systemd
	// would count the restarts.
	ready := want[:0:0]
	for _, c := range want {
		if c.err != nil {
			fail(c.unit.ID, c.app, report.StateInvalid, c.err)
			continue
		}
		if err := sourceThroughSymlink(p.roots, c.unit); err != nil {
			fail(c.unit.ID, c.app, "waiting", err)
			wake = now.Add(SourceRecheck)
			continue
		}
		if missing := missingSource(c.unit); missing != "" {
			rep.Failures = append(rep.Failures, failure(c.unit.ID, c.app, fmt.Sprintf("waiting for %s (a mount source) to exist", missing), outcome.ClassWaiting))
			rep.Companions = append(rep.Companions, report.AppStatus{ID: c.unit.ID, App: c.app, State: "waiting"})
			// Data dirs are not watched: look again soon (lnd writes its certificate seconds after start).
			wake = now.Add(SourceRecheck)
			continue
		}
		ready = append(ready, c)
	}
	want = ready
	changed, wrote := map[string]bool{}, map[string]bool{}
	for _, c := range want {
		data, err := cc.render(c.unit)
		if err != nil {
			fail(c.unit.ID, c.app, report.StateInvalid, err)
			continue
		}
		if err := notOurs(cc.Dir, c.file); err != nil {
			fail(c.unit.ID, c.app, "foreign", err)
			continue
		}
		path := filepath.Join(cc.Dir, c.file)
		_, serr := os.Lstat(path)
		ch, err := atomicfile.WriteIfChanged(path, data, 0o644)
		if err != nil {
			fail(c.unit.ID, c.app, "unknown", err)
			continue
		}
		if cc.written == nil {
			cc.written = map[string][32]byte{}
		}
		sum, differs := sha256.Sum256(data), false
		if old, ok := cc.written[c.file]; ok {
			differs = old != sum
		}
		cc.written[c.file] = sum
		if ch {
			st.Writes++
			// A unit file that was deleted and is written again as lockstep last wrote it (or, after a
			// restart of lockstepd, with nothing known of it) changes nothing the unit runs: reload,
			// no restart. Any other change restarts an active unit.
			changed[c.file], wrote[c.file] = !errors.Is(serr, fs.ErrNotExist) || differs, true
		}
	}
	// 3. At most one reload, only when files changed (or a failed reload left systemd behind them).
	if st.Writes+st.Deletes > 0 || *reloadPending {
		if err := cc.Systemd.Reload(ctx); err != nil {
			*reloadPending = true
			for _, c := range want {
				fail(c.unit.ID, c.app, "unknown", err)
			}
			return st, wake
		}
		*reloadPending = false
		st.Reloads++
	}
	// 4. Check and start.
	for _, c := range want {
		if failed(rep, c.unit.ID) {
			continue
		}
		s, err := cc.Systemd.State(ctx, c.name)
		if err != nil {
			fail(c.unit.ID, c.app, "unknown", err)
			continue
		}
		status := report.AppStatus{ID: c.unit.ID, App: c.app, Image: c.unit.Image}
		if s.LoadState != "loaded" {
			msg := fmt.Sprintf("unit %s did not load (%s)", c.name, s.LoadState)
			if cc.Mode == ModeQuadlet && cc.Generator != "" {
				if why, err := quadlet.DryRun(cc.Generator, cc.Dir, c.file); err != nil {
					msg = fmt.Sprintf("unit %s was not generated: %s", c.name, why)
				}
			}
			fail(c.unit.ID, c.app, report.StateInvalid, errors.New(msg))
			continue
		}
		action, cause := "", ""
		switch {
		case changed[c.file] && (s.ActiveState == "active" || s.ActiveState == "activating" || s.ActiveState == "reloading"):
			action, cause = "restart-companion", "unit file changed"
			err = cc.Systemd.Restart(ctx, c.name)
		case s.ActiveState == "failed":
			action, cause = "start-companion", fmt.Sprintf("unit failed (%s)", s.Result)
			if err = cc.Systemd.ResetFailed(ctx, c.name); err == nil {
				err = cc.Systemd.Start(ctx, c.name)
			}
		case s.ActiveState == "inactive":
			// (deactivating: a stop is under way, perhaps the operator's; starting now would cancel
			// its job. The unit's stop signal or the next pass brings it back.)
			action, cause = "start-companion", "unit is "+s.ActiveState
			if wrote[c.file] {
				cause = "unit file written"
			}
			err = cc.Systemd.Start(ctx, c.name)
		}
		if action != "" {
			rep.Actions = append(rep.Actions, report.ActionRec{App: c.unit.ID, Action: action, Cause: cause})
			status.LastAction = strings.TrimSuffix(action, "-companion")
			if err != nil {
				fail(c.unit.ID, c.app, "failed", err)
				continue
			}
			if s2, err := cc.Systemd.State(ctx, c.name); err == nil {
				s = s2
			}
		}
		status.State = s.ActiveState
		if s.SubState != "" {
			status.State = s.ActiveState + "/" + s.SubState
		}
		status.Health = fmt.Sprintf("restarts=%d", s.NRestarts)
		if s.ActiveState == "active" {
			if judgeReady(ctx, c, action != "", &status, rep, appRow(rep, c.app)) {
				wake = now.Add(ProbeRecheck)
			}
		}
		rep.Companions = append(rep.Companions, status)
	}
	sort.SliceStable(rep.Companions, func(i, j int) bool { return rep.Companions[i].ID < rep.Companions[j].ID })
	return st, wake
}

// failed tells whether the report already holds a failure for id.
// failure is a companion's failure: about companion id, for its app (both "" for the stage as a
// whole).
func failure(id, app, msg string, class outcome.Class) report.Failure {
	return report.Failure{App: app, Error: msg, Class: class, Subject: outcome.SubjectCompanion, Name: id}
}

func failed(rep *report.Report, id string) bool {
	for _, f := range rep.Failures {
		if f.Subject == outcome.SubjectCompanion && f.Name == id {
			return true
		}
	}
	return false
}

// companionApp reads the app label of an owned unit file in dir (for held apps).
func companionApp(dir, file string) string {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, spec.LabelCompanionOf+"="); i >= 0 {
			rest := l[i+len(spec.LabelCompanionOf)+1:]
			return strings.Trim(strings.Fields(rest)[0], `"`)
		}
	}
	return ""
}

// A companion is ready only when it serves: its published TCP ports answer from the host (a GET of
// its probes' paths, through it to its upstream, 2xx or 3xx; else a TCP connect), not when systemd
// has it active/running. One started in this pass is "starting" until a pass finds it serving; one
// that does not answer is "unreachable", with the reason; either brings a pass within ProbeRecheck.
// Its app's failing state or health (the upstream it fronts) is reported on it too.

// ProbeRecheck is how soon a pass comes again while a companion is starting or unreachable.
const ProbeRecheck = time.Second

// judgeReady judges an active companion (started: in this pass) and tells whether a pass should come
// again soon.
func judgeReady(ctx context.Context, c companion, started bool, st *report.AppStatus, rep *report.Report, app *report.AppStatus) (again bool) {
	if app != nil && (app.State != report.StateRunning || app.Health == "unhealthy") {
		what := app.State
		if app.Health == "unhealthy" {
			what = "unhealthy"
		}
		rep.Failures = append(rep.Failures, report.Failure{App: c.unit.ID, Error: fmt.Sprintf("its upstream, app %s, is %s", c.app, what)})
	}
	for _, p := range c.unit.Ports {
		if p.HostPort == 0 || p.Protocol != "tcp" {
			continue
		}
		if started {
			st.State = "starting"
			return true
		}
		if why := probe.Port(ctx, p, c.probes[p.ContainerPort]); why != "" {
			st.State = report.StateUnreachable
			rep.Failures = append(rep.Failures, report.Failure{App: c.unit.ID, Error: "running but not serving: " + why})
			return true
		}
	}
	return false
}

// appRow is app's row in the report (made by the apps stage), or nil.
func appRow(rep *report.Report, app string) *report.AppStatus {
	for i := range rep.Apps {
		if rep.Apps[i].ID == app {
			return &rep.Apps[i]
		}
	}
	return nil
}

// SourceRecheck is how soon a pass comes again while a companion waits for a mount source.
const SourceRecheck = 5 * time.Second

// notOurs refuses to replace a unit file that exists without lockstep's header (an admin's own
// unit of that name, or another tool's): it is reported and left alone.
func notOurs(dir, file string) error {
	f, err := os.Open(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unit file %s: %w", filepath.Join(dir, file), err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, int64(len(quadlet.Header)))).ReadString('\n')
	if line != quadlet.Header {
		return fmt.Errorf("unit file %s exists and was not written by lockstep (no lockstep header): left alone; remove or rename it to let lockstep write its companion", filepath.Join(dir, file))
	}
	return nil
}

// sourceThroughSymlink refuses a bind-mount source (inside the data root or an allowed root) whose
// path runs through a symlink: the companion's app, or another app whose data dir is on the way,
// could have pointed it anywhere (/ included), and podman would mount what it points at.
func sourceThroughSymlink(roots manifest.Roots, u quadlet.Unit) error {
	for _, v := range u.Volumes {
		for _, root := range append([]string{roots.DataRoot}, roots.Extra...) {
			rel, err := filepath.Rel(root, v.Source)
			if root == "" || err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			d, err := beneath.Open(root, 0o711)
			if err != nil {
				return fmt.Errorf("mount source %s: %w", v.Source, err)
			}
			err = d.Check(rel)
			d.Close()
			if errors.Is(err, beneath.ErrSymlink) {
				return fmt.Errorf("mount source %s: %w: refused", v.Source, beneath.ErrSymlink)
			}
			break
		}
	}
	return nil
}

// missingSource returns the first bind-mount source of u that does not exist, or "".
func missingSource(u quadlet.Unit) string {
	for _, v := range u.Volumes {
		if _, err := os.Stat(v.Source); errors.Is(err, fs.ErrNotExist) {
			return v.Source
		}
	}
	return ""
}
