package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// tree lists every path under dir (relative), so that a test can tell whether anything was created.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lockstepctl plan, the real binary run as root against a real podman, changes nothing: on a fresh
// state dir (an empty one, and one that does not exist) it creates no secret, data dir, state file or
// temporary dir, although the installed apps export a secret that another app's env expands, mount
// ${APP_DATA} and have a pre-start template; and it still plans both installs.
func TestPlanAsRootOnAFreshStateDirCreatesNothing(t *testing.T) {
	pm := realPodman(t)
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	bin := built(t, "lockstepctl")
	for _, fresh := range []string{"empty", "absent"} {
		t.Run(fresh, func(t *testing.T) {
			dir := t.TempDir()
			apps, state, tmp := filepath.Join(dir, "apps"), filepath.Join(dir, "state"), filepath.Join(dir, "tmp")
			for _, d := range []string{apps, tmp} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if fresh == "empty" {
				if err := os.Mkdir(state, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeApp(t, apps, "ro-prov", "  container:\n    image: "+image+"\n    volumes: ['${APP_DATA}/d:/d']\n"+
				"  exports:\n    pw: {secret: true, shared: true}\n")
			writeApp(t, apps, "ro-cons", "  container:\n    image: "+image+"\n    env: {PW: '${ro-prov.pw}'}\n"+
				"  requires:\n    apps: [ro-prov]\n"+
				"  hooks:\n    pre_start:\n      - {template: conf.tmpl, path: conf/app.conf}\n")
			if err := os.WriteFile(filepath.Join(apps, "conf.tmpl"), []byte("pw={{dep \"ro-prov\" \"pw\"}}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := tree(t, dir)
			cmd := exec.Command(bin, "plan", "--json", "--podman-url", pm.URL(), "--apps-dir", apps, "--state-dir", state)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			out, err := cmd.Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("plan: %v\n%s%s", err, out, stderr)
			}
			var plan planJSON
			if err := json.Unmarshal(out, &plan); err != nil {
				t.Fatalf("plan --json: %v\n%s", err, out)
			}
			var got []string
			for _, a := range plan.Actions {
				got = append(got, a.App+":"+a.Action)
			}
			if strings.Join(got, " ") != "ro-cons:install ro-prov:install" || len(plan.Problems) != 0 {
				t.Fatalf("plan %s", out)
			}
			if after := tree(t, dir); !slices.Equal(before, after) {
				t.Fatalf("plan changed the tree:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
