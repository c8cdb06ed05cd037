package spec

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/desired.golden")

// The create requests and spec hashes of every container of the demo catalogs' apps are pinned: a
// change to how a manifest becomes a spec that would recreate existing containers (a changed hash)
// or send podman something else shows here. Rewrite with -update only for an intended change, and
// never for a changed hash of an existing field (that needs a new scheme: see HashV1).
func TestDesiredOfTheCatalogsIsPinned(t *testing.T) {
	// export's web uses the host's network: the operator's policy grants it.
	roots := manifest.Roots{DataRoot: "/var/lib/lockstep/apps", Policy: &policy.Policy{Apps: map[string]policy.Grants{"web": {HostNetwork: true}}}}
	var apps []*manifest.Loaded
	for _, dir := range []string{"../catalog/demo", "../export/testdata/apps"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(files) == 0 {
			t.Fatalf("no manifests in %s", dir)
		}
		for _, f := range files {
			a, ps := manifest.LoadFile(f, roots)
			if len(ps) > 0 {
				t.Fatalf("%s: %v", f, ps)
			}
			apps = append(apps, a)
		}
	}
	set := &manifest.Set{Apps: apps, Providers: manifest.Providers(apps)}
	value := func(app *manifest.Loaded, name string) (string, error) { return "value-of-" + app.ID + "." + name, nil }
	got := map[string]any{}
	for _, a := range apps {
		for _, d := range DesiredsFor(a, &Wiring{Roots: roots, Set: set, Value: value}) {
			if d.Err != nil {
				t.Fatalf("%s: %v", d.Name(), d.Err)
			}
			got[d.Name()] = map[string]any{"hash": d.Hash(), "request": d.Request}
		}
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "desired.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var w, g map[string]any
	json.Unmarshal(want, &w)
	json.Unmarshal(b, &g)
	if diff := cmp.Diff(w, g); diff != "" {
		names := make([]string, 0, len(g))
		for n := range g {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Fatalf("desired containers changed (-pinned +now) for %v:\n%s", names, diff)
	}
}
