package httpapi

import (
	"testing"

	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// lockstep_failures_total counts a failure by its subject and class, from the report's fields (no
// message is read: a manifest problem's text no longer decides that it is one); a failure of a report
// without subjects (an older lockstepd's) counts as the pass's or its app's.
func TestFailuresAreCountedBySubjectAndClass(t *testing.T) {
	m := NewMetrics()
	m.Observe(&report.Report{Trigger: "timer", Failures: []report.Failure{
		{App: "bad", Error: "bad.yaml: app.nme: unknown key", Class: outcome.ClassInvalidManifest, Subject: outcome.SubjectManifest, Name: "/a/bad.yaml"},
		{App: "web", Error: "waiting for /x (a mount source) to exist", Class: outcome.ClassWaiting, Subject: outcome.SubjectCompanion, Name: "web-ui"},
		{App: "stack", Error: "db: timed out: podman start gave no answer within 2m0s", Class: outcome.ClassTimeout, Subject: outcome.SubjectContainer, Name: "db"},
		{App: "node", Error: "listing containers: podman service unavailable", Class: outcome.ClassUnavailable, Subject: outcome.SubjectApp},
		{App: "node2", Error: "listing containers: podman service unavailable", Class: outcome.ClassUnavailable, Subject: outcome.SubjectApp},
		{Error: "reading apps dir: permission denied", Class: outcome.ClassFailed, Subject: outcome.SubjectPass},
		// An app whose message merely looks like a manifest's is the app's.
		{App: "old", Error: "copying /data/x.yaml: boom"},
		{Error: "old pass failure"},
	}})
	for _, tt := range []struct {
		kind, class string
		want        float64
	}{
		{"manifest", "invalid_manifest", 1}, {"companion", "waiting", 1}, {"container", "timeout", 1},
		{"app", "podman_unavailable", 2}, {"pass", "failed", 2}, {"app", "failed", 1},
	} {
		if got := failureCounts(t, m)[tt.kind+"/"+tt.class]; got != tt.want {
			t.Errorf("lockstep_failures_total{kind=%q,class=%q} = %v, want %v", tt.kind, tt.class, got, tt.want)
		}
	}
	if n := len(failureCounts(t, m)); n != 6 {
		t.Errorf("%d failure series, want 6: %v", n, failureCounts(t, m))
	}
	// Every class has its label: a failure of each is counted under it.
	for _, i := range outcome.Table() {
		m.Observe(&report.Report{Failures: []report.Failure{{App: "x", Error: "e", Class: i.Class, Subject: outcome.SubjectApp}}})
		if got := failureCounts(t, m)["app/"+i.Metric]; got < 1 {
			t.Errorf("class %s: nothing counted under class=%q", i.Class, i.Metric)
		}
	}
}

// failureCounts reads lockstep_failures_total from the registry, by "kind/class".
func failureCounts(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "lockstep_failures_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["kind"]+"/"+l["class"]] = mt.GetCounter().GetValue()
		}
	}
	return out
}
