package images

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

func TestPullProgressRate(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	pp := newPullProgress(log, time.Hour)
	fmt.Fprint(pp, "Trying to pull x...\nGetting image source signatures\nCopying blob sha256:1\r\nCopying blob ")
	fmt.Fprint(pp, "sha256:2\n\nWriting manifest")
	pp.flush()
	var got []string
	for _, e := range hook.AllEntries() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"info pull: Trying to pull x...", "debug pull: Getting image source signatures", "debug pull: Copying blob sha256:1",
		"debug pull: Copying blob sha256:2", "debug pull: Writing manifest"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || pp.lines != 5 {
		t.Fatalf("got %q (%d lines)", got, pp.lines)
	}
	// With no minimum interval every line is at Info.
	hook.Reset()
	pp = newPullProgress(log, 0)
	fmt.Fprint(pp, "a\nb\nc\n")
	for _, e := range hook.AllEntries() {
		if e.Level != logrus.InfoLevel {
			t.Fatalf("%+v", e)
		}
	}
	if len(hook.AllEntries()) != 3 {
		t.Fatal(hook.AllEntries())
	}
}
