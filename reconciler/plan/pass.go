package plan

import (
	"fmt"
	"slices"
	"time"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// Observation is everything one pass looks at, gathered once before it plans (the reconciler's
// observe): the containers podman listed, the health monitor's view, what probing the published
// ports found, the outcome of rendering the pre-start hooks (without writing them), the books of
// restart backoff, reachability and rollback, and the time. Planning reads nothing else.
type Observation struct {
	Now        time.Time
	Invalid    map[string]bool     // installed apps whose manifest is invalid
	Containers []engine.Container  // every container podman listed
	Adopted    map[string]Adoption // container name -> adopted container
	// Health is the health monitor's view of the containers it checks, by podman name; a container
	// it does not check is absent.
	Health map[string]Health
	// Unreachable is, by container name, what failed when the pass probed a running container's
	// published TCP ports (absent: it answered, or it was not probed).
	Unreachable map[string]string
	Reach       map[string]Reach   // the reachability book, by container name
	Backoff     map[string]Backoff // the restart backoff book, by app
	Rollback    map[string]Record  // the rollback book, by container name
	Running     map[string]Running // containers without a health check seen running, by name
	// Hooks is, by app, the outcome of rendering each pre-start hook, in the manifest's order.
	Hooks map[string][]Hook
	// DepWaits books the dependents waiting for a repaired dependency to be ready again before their
	// restart (dependent app -> dependency; AfterRepair).
	DepWaits map[string]string
	// ReachGrace is how long a running app may leave a published port unanswered before it is
	// repaired; RollbackSettle how long a new container without a health check must run to be good.
	ReachGrace, RollbackSettle time.Duration
}

// Health is the monitor's view of one container.
type Health struct {
	Status string // healthy, unhealthy, starting or unknown (never checked yet)
	Streak int    // failing checks in a row
	// Since is when this process began checking the container: a trial's deadline counts from it.
	Since time.Time
}

// Reach is how long a container has been unreachable and how often it was repaired for it.
type Reach struct {
	Since    time.Time // first seen unreachable
	Repaired int       // repairs made since: 1 restart, then recreates
	Probes   int       // passes that found it unreachable since: spaces the re-probes
}

// Re-probes of an unreachable app: the pass that finds it unreachable asks for the next one
// ReprobeMin later, each further one twice as late up to ReprobeMax, and never after the end of
// its grace period (its repair is due then). Nothing else may bring a pass: an app without a health
// check has no monitor to ask for one.
const (
	ReprobeMin = time.Second
	ReprobeMax = 16 * time.Second
)

// ReprobeDelay is the wait after the n-th pass that found an app unreachable.
func ReprobeDelay(n int) time.Duration {
	d := ReprobeMin
	for i := 1; i < n && d < ReprobeMax; i++ {
		d *= 2
	}
	return min(d, ReprobeMax)
}

// Hook is one pre-start hook's outcome, worked out without writing anything.
type Hook struct {
	Name, Path string
	Containers []string // the containers it restarts when it changes (empty: every container)
	Changed    bool     // the rendered file differs from the one on disk
	Err        error    // rendering failed
}

// Note is something planning decided that the log should say (a spec kept or rolled back).
type Note struct {
	App, Container, Message string
	Warn                    bool
}

// HookWrite asks the executor to write (or chown) the index-th pre-start hook of app, before any
// container of the pass starts.
type HookWrite struct {
	App   string
	Index int
}

// Result is a pass's plan: the actions, the hook writes that come before them, and the books as the
// plan leaves them (the executor keeps them; a dry run drops them).
type Result struct {
	Actions []Action
	Hooks   []HookWrite
	// Unreachable is, by container name, what failed for the running containers the report shows
	// unreachable.
	Unreachable   map[string]string
	Reach         map[string]Reach
	ForgetBackoff []string // apps whose restart history is forgotten
	Rollback      map[string]Record
	// RollbackChanged: the rollback book differs from the observed one and is to be saved.
	RollbackChanged bool
	Running         map[string]Running
	Held            map[string]bool // containers held on, or rolled back to, their good spec
	DepWaits        map[string]string
	// Wake is when the plan wants another pass at the latest, when nothing else would bring it (a
	// dependency without a health check awaited, an unreachable app's re-probe); zero: no need.
	Wake  time.Time
	Notes []Note
}

// DepRecheck is how soon a pass comes again while a dependent waits for a dependency that has no
// health check (whose readiness, running and answering, only a pass observes).
const DepRecheck = 2 * time.Second

func (res *Result) wakeBy(t time.Time) {
	if res.Wake.IsZero() || t.Before(res.Wake) {
		res.Wake = t
	}
}

// Plan decides, without any I/O, everything a pass does: it matches the desired containers with
// the observed ones (Match), then folds in, in this order, rollback judging and holds, manifests
// whose values could not be had, health, reachability repairs, waits for healthy dependencies,
// restart backoff, dependents after a repair, and pre-start hook outcomes (docs/architecture.md, "A
// pass", says why in this order).
func Plan(desired []*spec.Desired, obs *Observation) *Result {
	res := &Result{Unreachable: map[string]string{}, Reach: map[string]Reach{}, Rollback: map[string]Record{},
		Running: map[string]Running{}, Held: map[string]bool{}, DepWaits: map[string]string{}}
	for k, v := range obs.Reach {
		res.Reach[k] = v
	}
	for k, v := range obs.Rollback {
		res.Rollback[k] = v
	}
	for k, v := range obs.Running {
		res.Running[k] = v
	}
	for k, v := range obs.DepWaits {
		res.DepWaits[k] = v
	}
	actions := Match(Input{Desired: desired, Invalid: obs.Invalid, Containers: obs.Containers, Adopted: obs.Adopted})
	res.judgeRollbacks(actions, obs)
	for i := range actions {
		a := &actions[i]
		if a.Desired != nil && a.Desired.Err != nil {
			a.Blocked = a.Desired.Err
			continue
		}
		if h, ok := obs.Health[a.Name()]; ok && a.Kind == KindNone && h.Status == healthUnhealthy {
			a.Kind, a.Cause = KindRestart, fmt.Sprintf("unhealthy (%d failing health checks)", h.Streak)
		}
	}
	res.repairUnreachable(actions, obs)
	WaitForHealthyDependencies(actions, func(name string) string { return obs.Health[name].Status })
	book := map[string]*Backoff{}
	for k, v := range obs.Backoff {
		book[k] = &v
	}
	res.ForgetBackoff = ApplyBackoff(actions, book, obs.Now)
	byApp := map[string][]*Action{}
	for i := range actions {
		if a := &actions[i]; a.Desired != nil && a.Kind != KindRemove {
			byApp[a.App] = append(byApp[a.App], a)
		}
	}
	AfterRepair(actions, res.DepWaits, func(app string) (bool, string) { return ready(byApp[app], obs) })
	for _, dep := range res.DepWaits {
		for _, a := range byApp[dep] {
			if a.Desired.Health == nil {
				res.wakeBy(obs.Now.Add(DepRecheck))
			}
		}
	}
	res.Hooks = applyHooks(actions, obs.Hooks)
	res.Actions = actions
	return res
}

// ready tells whether an app's containers are ready, as the observation shows them and the plan
// leaves them: each running and left alone by this pass, healthy if it has a health check, else
// answering on its published ports; if not, why.
func ready(acts []*Action, obs *Observation) (bool, string) {
	for _, a := range acts {
		switch {
		case a.Kind != KindNone || a.Container == nil || a.Container.State != "running":
			return false, "not running"
		case a.Desired.Health != nil:
			if h := obs.Health[a.Name()].Status; h != healthHealthy {
				if h == "" {
					h = "not checked yet"
				}
				return false, h
			}
		default:
			if why, bad := obs.Unreachable[a.Name()]; bad {
				return false, why
			}
		}
	}
	return true, ""
}

// Health values as the report shows them (package report's).
const (
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
)

// repairUnreachable turns a lasting failure of a running, unchanged app's published ports into a
// repair: first a restart, then recreates (each under restart backoff, which follows).
func (res *Result) repairUnreachable(actions []Action, obs *Observation) {
	for i := range actions {
		a := &actions[i]
		if a.Kind != KindNone || a.Desired == nil || len(a.Desired.Request.Ports) == 0 {
			continue
		}
		why, bad := obs.Unreachable[a.Name()]
		if !bad {
			delete(res.Reach, a.Name())
			continue
		}
		res.Unreachable[a.Name()] = why
		st, ok := res.Reach[a.Name()]
		if !ok {
			st = Reach{Since: obs.Now}
		}
		grace := obs.ReachGrace
		if h := a.Desired.Health; h != nil && h.StartPeriod.D() > grace {
			grace = h.StartPeriod.D()
		}
		st.Probes++
		if obs.Now.Sub(st.Since) < grace {
			res.Reach[a.Name()] = st
			res.wakeBy(obs.Now.Add(ReprobeDelay(st.Probes)))
			res.wakeBy(st.Since.Add(grace))
			continue
		}
		st.Repaired++
		res.Reach[a.Name()] = st
		if st.Repaired == 1 {
			a.Kind = KindRestart
		} else {
			a.Kind = KindForceRecreate
		}
		a.Cause = fmt.Sprintf("running but unreachable: %s (for %s)", why, obs.Now.Sub(st.Since).Round(time.Second))
	}
}

// applyHooks folds the pre-start hooks' outcomes into the actions and returns the writes to make. A
// failing hook blocks every action of its app (an app never starts on a stale config) and the hooks
// after it are not written; a changed file restarts the running containers that use it, once (a
// container started or recreated in this pass reads the new file anyway).
func applyHooks(actions []Action, hooks map[string][]Hook) []HookWrite {
	byApp := map[string][]*Action{}
	var apps []string
	for i := range actions {
		a := &actions[i]
		if a.Desired != nil && a.Kind != KindRemove {
			if byApp[a.App] == nil {
				apps = append(apps, a.App)
			}
			byApp[a.App] = append(byApp[a.App], a)
		}
	}
	var writes []HookWrite
	for _, app := range apps {
		acts := byApp[app]
		for i, h := range hooks[app] {
			if h.Err != nil {
				err := fmt.Errorf("pre-start hook %s: %w", h.Name, h.Err)
				for _, a := range acts {
					if a.Blocked == nil {
						a.Blocked = err
					}
				}
				break
			}
			writes = append(writes, HookWrite{App: app, Index: i})
			if !h.Changed {
				continue
			}
			for _, a := range acts {
				if len(h.Containers) > 0 && !slices.Contains(h.Containers, a.Desired.Member) && !slices.Contains(h.Containers, a.Name()) {
					continue
				}
				if a.Kind == KindNone && a.Container != nil && a.Container.State == "running" {
					a.Kind, a.Cause, a.ConfigChanged = KindRestart, fmt.Sprintf("pre-start hook %s changed %s", h.Name, h.Path), true
				}
			}
		}
	}
	return writes
}
