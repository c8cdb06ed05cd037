package report

import (
	"testing"

	"github.com/lockstep/lockstep/outcome"
)

func TestFailureWho(t *testing.T) {
	for _, tt := range []struct {
		f    Failure
		want string
	}{
		{Failure{App: "web", Error: "x"}, "web"}, // an older lockstepd's: no class
		{Failure{Error: "x", Class: outcome.ClassFailed, Subject: outcome.SubjectPass}, "(pass) (failed)"},
		{Failure{App: "bad", Class: outcome.ClassInvalidManifest, Subject: outcome.SubjectManifest, Name: "/a/bad.yaml"}, "bad (invalid manifest)"},
		{Failure{App: "web", Class: outcome.ClassWaiting, Subject: outcome.SubjectCompanion, Name: "web-ui"}, "web companion web-ui (waiting)"},
		{Failure{App: "s", Class: outcome.ClassTimeout, Subject: outcome.SubjectContainer, Name: "db"}, "s (timed out)"},
	} {
		if got := tt.f.Who(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.f, got, tt.want)
		}
	}
}
