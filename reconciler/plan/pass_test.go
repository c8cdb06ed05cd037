package plan

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func withHealth(a *manifest.Loaded) *manifest.Loaded {
	a.Health = &manifest.Health{Command: []string{"check"}}
	return a
}

func withPort(a *manifest.Loaded) *manifest.Loaded {
	a.Container.Ports = []string{"127.0.0.1:18080:80"}
	return a
}

// Plan folds the whole observation into the actions without I/O: each row is an observation and
// the steps (and, where it matters, the books) the plan gives for it.
func TestPlanFoldsTheObservation(t *testing.T) {
	web, lnd := app("web"), app("lnd", "web")
	hweb := withHealth(app("web"))
	pweb := withPort(app("web"))
	tests := []struct {
		name  string
		apps  []*manifest.Loaded
		obs   Observation
		want  []step
		check func(t *testing.T, r *Result)
	}{
		{name: "unhealthy and running is restarted", apps: []*manifest.Loaded{hweb},
			obs:  Observation{Containers: []engine.Container{owned(hweb, "running")}, Health: map[string]Health{"web": {Status: "unhealthy", Streak: 3}}},
			want: []step{{"web", "restart", "unhealthy (3 failing health checks)"}}},
		{name: "a restart too soon waits for its backoff", apps: []*manifest.Loaded{web},
			obs: Observation{Containers: []engine.Container{owned(web, "exited")},
				Backoff: map[string]Backoff{"web": {Attempts: 1, LastStart: t0.Add(-time.Second), Next: t0.Add(9 * time.Second)}}},
			want: []step{{"web", "wait", "container is exited; restart backoff after 1 restarts: next attempt at 2026-01-01T00:00:09Z"}}},
		{name: "an app up for the reset time forgets its backoff", apps: []*manifest.Loaded{web},
			obs: Observation{Containers: []engine.Container{owned(web, "running")},
				Backoff: map[string]Backoff{"web": {Attempts: 4, LastStart: t0.Add(-BackoffReset)}}},
			want:  []step{{"web", "none", "running, spec unchanged"}},
			check: func(t *testing.T, r *Result) { cmpv(t, []string{"web"}, r.ForgetBackoff) }},
		{name: "unreachable within the grace is only reported", apps: []*manifest.Loaded{pweb},
			obs: Observation{Containers: []engine.Container{owned(pweb, "running")}, ReachGrace: 20 * time.Second,
				Unreachable: map[string]string{"web": "127.0.0.1:18080 does not answer"}},
			want: []step{{"web", "none", "running, spec unchanged"}},
			check: func(t *testing.T, r *Result) {
				cmpv(t, map[string]Reach{"web": {Since: t0, Probes: 1}}, r.Reach)
				cmpv(t, map[string]string{"web": "127.0.0.1:18080 does not answer"}, r.Unreachable)
				cmpv(t, t0.Add(ReprobeMin), r.Wake) // it asks for its own re-probe
			}},
		{name: "re-probes are spaced, never past the grace", apps: []*manifest.Loaded{pweb},
			obs: Observation{Containers: []engine.Container{owned(pweb, "running")}, ReachGrace: 20 * time.Second,
				Unreachable: map[string]string{"web": "127.0.0.1:18080 does not answer"}, Reach: map[string]Reach{"web": {Since: t0.Add(-10 * time.Second), Probes: 4}}},
			want: []step{{"web", "none", "running, spec unchanged"}},
			check: func(t *testing.T, r *Result) {
				cmpv(t, t0.Add(10*time.Second), r.Wake) // 16 s by the spacing; the grace ends sooner
				if ReprobeDelay(1) != ReprobeMin || ReprobeDelay(3) != 4*time.Second || ReprobeDelay(50) != ReprobeMax {
					t.Fatal("re-probe delays")
				}
			}},
		{name: "unreachable past the grace is restarted, then recreated", apps: []*manifest.Loaded{pweb},
			obs: Observation{Containers: []engine.Container{owned(pweb, "running")}, ReachGrace: 20 * time.Second,
				Unreachable: map[string]string{"web": "127.0.0.1:18080 does not answer"}, Reach: map[string]Reach{"web": {Since: t0.Add(-30 * time.Second), Repaired: 1}}},
			want: []step{{"web", "force-recreate", "running but unreachable: 127.0.0.1:18080 does not answer (for 30s)"}},
			check: func(t *testing.T, r *Result) {
				cmpv(t, Reach{Since: t0.Add(-30 * time.Second), Repaired: 2, Probes: 1}, r.Reach["web"])
			}},
		{name: "reachable again clears the book", apps: []*manifest.Loaded{pweb},
			obs:   Observation{Containers: []engine.Container{owned(pweb, "running")}, Reach: map[string]Reach{"web": {Since: t0.Add(-time.Minute)}}},
			want:  []step{{"web", "none", "running, spec unchanged"}},
			check: func(t *testing.T, r *Result) { cmpv(t, map[string]Reach{}, r.Reach) }},
		{name: "a changed hook restarts the running container and is written", apps: []*manifest.Loaded{web},
			obs: Observation{Containers: []engine.Container{owned(web, "running")},
				Hooks: map[string][]Hook{"web": {{Name: "conf", Path: "app.conf"}, {Name: "b", Path: "b.conf", Changed: true}}}},
			want:  []step{{"web", "restart", "pre-start hook b changed b.conf"}},
			check: func(t *testing.T, r *Result) { cmpv(t, []HookWrite{{"web", 0}, {"web", 1}}, r.Hooks) }},
		{name: "a failing hook blocks its app and stops its later hooks", apps: []*manifest.Loaded{web},
			obs:  Observation{Hooks: map[string][]Hook{"web": {{Name: "a", Err: errors.New("no template")}, {Name: "b", Changed: true}}}},
			want: []step{{"web", "install", "no container"}},
			check: func(t *testing.T, r *Result) {
				if r.Actions[0].Blocked == nil || r.Actions[0].Blocked.Error() != "pre-start hook a: no template" || len(r.Hooks) != 0 {
					t.Fatalf("blocked %v, writes %v", r.Actions[0].Blocked, r.Hooks)
				}
			}},
		{name: "a dependent waits for its dependency to be healthy", apps: []*manifest.Loaded{hweb, lnd},
			obs:  Observation{Containers: []engine.Container{owned(hweb, "running")}, Health: map[string]Health{"web": {Status: "starting"}}},
			want: []step{{"lnd", "wait", "no container; waiting for dependency web to be healthy (starting)"}, {"web", "none", "running, spec unchanged"}}},
		{name: "a dependency's repair books its running dependent, which keeps running", apps: []*manifest.Loaded{hweb, lnd},
			obs:  Observation{Containers: []engine.Container{owned(hweb, "exited"), owned(lnd, "running")}},
			want: []step{{"lnd", "none", "dependency web was restarted; waiting for web to be healthy before restarting this app"}, {"web", "start", "container is exited"}},
			check: func(t *testing.T, r *Result) {
				cmpv(t, map[string]string{"lnd": "web"}, r.DepWaits)
				cmpv(t, time.Time{}, r.Wake) // web has a health check: the monitor brings the pass
			}},
		{name: "a dependent waits while its dependency warms up", apps: []*manifest.Loaded{hweb, lnd},
			obs: Observation{Containers: []engine.Container{owned(hweb, "running"), owned(lnd, "running")},
				Health: map[string]Health{"web": {Status: "starting"}}, DepWaits: map[string]string{"lnd": "web"}},
			want: []step{{"lnd", "none", "dependency web was restarted; waiting for web to be healthy (starting) before restarting this app"}, {"web", "none", "running, spec unchanged"}}},
		{name: "a dependent restarts once its dependency is healthy, outside backoff", apps: []*manifest.Loaded{hweb, lnd},
			obs: Observation{Containers: []engine.Container{owned(hweb, "running"), owned(lnd, "running")},
				Health: map[string]Health{"web": {Status: "healthy"}}, DepWaits: map[string]string{"lnd": "web"},
				Backoff: map[string]Backoff{"lnd": {Attempts: 3, LastStart: t0, Next: t0.Add(time.Minute)}}},
			want: []step{{"lnd", "restart", "dependency web was restarted and is healthy again"}, {"web", "none", "running, spec unchanged"}},
			check: func(t *testing.T, r *Result) {
				cmpv(t, map[string]string{}, r.DepWaits)
				if !r.Actions[0].AfterDependency {
					t.Fatal("not marked as a restart after a dependency")
				}
			}},
		{name: "an unhealthy dependent is not repaired while its dependency is not healthy", apps: []*manifest.Loaded{hweb, withHealth(app("lnd", "web"))},
			obs: Observation{Containers: []engine.Container{owned(hweb, "running"), owned(withHealth(app("lnd", "web")), "running")},
				Health: map[string]Health{"web": {Status: "starting"}, "lnd": {Status: "unhealthy", Streak: 3}}},
			want: []step{{"lnd", "none", "unhealthy (3 failing health checks); waiting for dependency web to be healthy (starting)"}, {"web", "none", "running, spec unchanged"}}},
		{name: "a dependency without a health check is rechecked soon", apps: []*manifest.Loaded{web, lnd},
			obs:   Observation{Containers: []engine.Container{owned(web, "exited"), owned(lnd, "running")}},
			want:  []step{{"lnd", "none", "dependency web was restarted; waiting for web to be healthy before restarting this app"}, {"web", "start", "container is exited"}},
			check: func(t *testing.T, r *Result) { cmpv(t, t0.Add(DepRecheck), r.Wake) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := tt.obs
			obs.Now = t0
			res := Plan(desired(tt.apps...), &obs)
			var got []step
			for _, a := range res.Actions {
				got = append(got, step{a.App, string(a.Kind), a.Cause})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func cmpv(t *testing.T, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// A container on trial is judged from the observation alone: unhealthy is rolled back to the good
// spec (and held), healthy is kept as the new good spec; the observed book is never changed.
func TestPlanJudgesTrials(t *testing.T) {
	good, bad := withHealth(app("web")), withHealth(app("web"))
	bad.Container.Image = "localhost/web:2"
	gd, bd := desired(good)[0], desired(bad)[0]
	rec := Record{App: "web", Good: &Good{Hash: gd.Hash(), Scheme: "v1", Request: gd.Request}, Trial: &Trial{Hash: bd.Hash(), From: gd.Hash(), Started: t0.Add(-time.Minute)}}
	for _, tt := range []struct {
		health   string
		kind     Kind
		held     bool
		goodHash string
	}{
		{"unhealthy", KindRollback, true, gd.Hash()},
		{"healthy", KindNone, false, bd.Hash()},
	} {
		t.Run(tt.health, func(t *testing.T) {
			obs := &Observation{Now: t0, Containers: []engine.Container{owned(bad, "running")},
				Health: map[string]Health{"web": {Status: tt.health, Streak: 3}}, Rollback: map[string]Record{"web": rec}}
			res := Plan([]*spec.Desired{bd}, obs)
			a := res.Actions[0]
			if a.Kind != tt.kind || res.Held["web"] != tt.held || res.Rollback["web"].Good.Hash != tt.goodHash || res.Rollback["web"].Trial != nil || !res.RollbackChanged {
				t.Fatalf("%s: %s %q held %v book %+v", tt.health, a.Kind, a.Cause, res.Held, res.Rollback["web"])
			}
			if tt.kind == KindRollback && (a.Desired.Hash() != gd.Hash() || res.Rollback["web"].Failed.Hash != bd.Hash()) {
				t.Fatalf("rolled back to %s, failed %+v", a.Desired.Hash(), res.Rollback["web"].Failed)
			}
			if obs.Rollback["web"].Trial == nil {
				t.Fatal("the observed book was changed")
			}
		})
	}
}
