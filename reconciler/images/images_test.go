package images

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

func TestRegistryPolicy(t *testing.T) {
	for _, tt := range []struct {
		name     string
		pol      RegistryPolicy
		ref      string
		manifest []string // registry.insecure
		tls      bool
		err      string
	}{
		{"zero policy allows all", RegistryPolicy{}, "quay.io/a/b:1", nil, true, ""},
		{"zero policy: manifest alone is not enough", RegistryPolicy{}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, true, ""},
		{"operator alone is not enough", RegistryPolicy{Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", nil, true, ""},
		{"both: insecure", RegistryPolicy{Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, false, ""},
		{"port must match", RegistryPolicy{Insecure: []string{"10.0.0.1"}}, "10.0.0.1:5000/a:1", []string{"10.0.0.1:5000"}, true, ""},
		{"allowed", RegistryPolicy{Allowed: []string{"quay.io"}}, "quay.io/a/b:1", nil, true, ""},
		{"docker hub normalized", RegistryPolicy{Allowed: []string{"docker.io"}}, "nginx:1.27", nil, true, ""},
		{"insecure entries are allowed", RegistryPolicy{Allowed: []string{"quay.io"}, Insecure: []string{"10.0.0.1:5000"}}, "10.0.0.1:5000/a:1", nil, true, ""},
		{"not allowed", RegistryPolicy{Allowed: []string{"quay.io", "ghcr.io"}}, "docker.io/library/nginx:1.27", nil, true,
			"registry not allowed: image docker.io/library/nginx:1.27 is from registry docker.io, which lockstepd's --allowed-registries (quay.io,ghcr.io) does not list"},
		{"no subdomain match", RegistryPolicy{Allowed: []string{"example.org"}}, "reg.example.org/a:1", nil, true, "registry not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tls, err := tt.pol.Check(tt.ref, tt.manifest)
			if tt.err == "" {
				if err != nil || tls != tt.tls {
					t.Fatalf("tls %v err %v, want tls %v", tls, err, tt.tls)
				}
				return
			}
			if !errors.Is(err, ErrRegistryNotAllowed) || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}

// A pull's progress: every line passed on, the first shown at once, then at most one per interval,
// each shown line counting those held back before it; the lines are split at \r and \n, blank ones
// dropped, a last line without an end flushed. Asserted on what the progress passes on (its hook) on
// a clock of the test's, not on log text.
func TestPullProgressRate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []progressLine
	pp := newProgress(10*time.Second, func() time.Time { return now }, func(l progressLine) { got = append(got, l) })
	fmt.Fprint(pp, "Trying to pull x...\nGetting image source signatures\nCopying blob sha256:1\r\nCopying blob ")
	now = now.Add(10 * time.Second)
	fmt.Fprint(pp, "sha256:2\n\nWriting manifest")
	now = now.Add(time.Second)
	pp.flush()
	want := []progressLine{{"Trying to pull x...", true, 0}, {"Getting image source signatures", false, 0}, {"Copying blob sha256:1", false, 0},
		{"Copying blob sha256:2", true, 2}, {"Writing manifest", false, 0}}
	if d := cmp.Diff(want, got); d != "" || pp.lines != 5 || pp.shown != 2 {
		t.Fatalf("(-want +got):\n%s\n%d lines, %d shown", d, pp.lines, pp.shown)
	}
	// With no minimum interval every line is shown.
	got = nil
	pp = newProgress(0, func() time.Time { return now }, func(l progressLine) { got = append(got, l) })
	fmt.Fprint(pp, "a\nb\nc\n")
	if d := cmp.Diff([]progressLine{{"a", true, 0}, {"b", true, 0}, {"c", true, 0}}, got); d != "" || pp.shown != 3 {
		t.Fatal(d)
	}
}

// The log is one sink of the progress: a shown line at Info (with more_lines when some were held
// back), the others at Debug.
func TestProgressLogLevels(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	for _, l := range []progressLine{{"a", true, 0}, {"b", false, 0}, {"c", true, 1}} {
		logProgress(log, l)
	}
	es := hook.AllEntries()
	if len(es) != 3 || es[0].Level != logrus.InfoLevel || es[1].Level != logrus.DebugLevel || es[2].Level != logrus.InfoLevel ||
		es[2].Data["more_lines"] != 1 || es[0].Data["more_lines"] != nil {
		t.Fatalf("%+v", es)
	}
}
