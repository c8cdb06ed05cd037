package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExportKube(t *testing.T) {
	cat, apps := "../../catalog/demo", t.TempDir()
	// From the catalog: demo-web, its companion, to stdout.
	code, out, errOut := runCtl("export", "demo-web", "--catalog-dir", cat, "--apps-dir", apps, "--data-root", "/srv/data")
	if code != 0 || errOut != "" || !strings.Contains(out, "kind: Pod\nmetadata:\n  name: demo-web\n") || !strings.Contains(out, "name: demo-web-ui\n") ||
		!strings.Contains(out, "path: /srv/data/demo-web/www") || !strings.Contains(out, "livenessProbe:") {
		t.Fatalf("export demo-web: exit %d %q\n%s", code, errOut, out)
	}
	// A Deployment with claims, into a file; warnings on stderr.
	file := filepath.Join(t.TempDir(), "out.yaml")
	code, out, errOut = runCtl("export", "demo-worker", "--kind", "deployment", "--volumes", "pvc", "-o", file, "--catalog-dir", cat, "--apps-dir", apps)
	b, _ := os.ReadFile(file)
	if code != 0 || out != "" || !strings.Contains(string(b), "kind: Deployment") || !strings.Contains(string(b), "claimName: demo-worker-data-data") ||
		!strings.Contains(errOut, "lockstepctl: export: warning: demo-worker: requires demo-web") {
		t.Fatalf("export --kind deployment: exit %d %q %q\n%s", code, out, errOut, b)
	}
	// --all exports the installed apps, and only them.
	for _, id := range []string{"demo-web", "demo-worker"} {
		os.Symlink(filepath.Join(mustAbs(t, cat), id+".yaml"), filepath.Join(apps, id+".yaml"))
	}
	code, out, _ = runCtl("export", "--all", "--apps-dir", apps)
	if code != 0 || !strings.Contains(out, "# app demo-web ") || !strings.Contains(out, "# app demo-worker ") || strings.Contains(out, "demo-built") {
		t.Fatalf("export --all: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export"}, "give app ids or --all"},
		{[]string{"export", "--all", "demo-web"}, "give app ids or --all"},
		{[]string{"export", "nope", "--catalog-dir", cat, "--apps-dir", apps}, `no manifest for "nope"`},
		{[]string{"export", "demo-web", "--kind", "job", "--apps-dir", apps}, `kind "job"`},
		{[]string{"export", "demo-web", "--format", "helm", "--apps-dir", apps}, `--format "helm"`},
		{[]string{"export", "demo-web", "--format", "quadlet", "--apps-dir", apps}, "needs --output DIR"},
		{[]string{"export", "--all", "--apps-dir", t.TempDir()}, "no apps are installed"},
	} {
		if code, _, errOut := runCtl(c.args...); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %q", c.args, code, errOut, c.want)
		}
	}
	// An invalid installed manifest fails --all: a stream without it would look complete.
	writeApp(t, apps, "broken", "  nme: x\n")
	if code, out, errOut := runCtl("export", "--all", "--apps-dir", apps); code != 1 || out != "" || !strings.Contains(errOut, "broken.yaml") {
		t.Fatalf("export --all with a broken manifest: exit %d %q %q", code, out, errOut)
	}
}

func TestExportQuadlet(t *testing.T) {
	out := t.TempDir()
	code, stdout, errOut := runCtl("export", "--format", "quadlet", "-o", out, "demo-web", "demo-worker", "--wanted-by", "default.target",
		"--catalog-dir", "../../catalog/demo", "--apps-dir", t.TempDir(), "--data-root", "/srv/data")
	if code != 0 || stdout != filepath.Join(out, "demo-web")+"\n"+filepath.Join(out, "demo-worker")+"\n" {
		t.Fatalf("export --format quadlet: exit %d %q %q", code, stdout, errOut)
	}
	for _, f := range []string{"demo-web/lockstep-demo-web.container", "demo-web/lockstep-demo-web-ui.container", "demo-web/README.md", "demo-worker/lockstep-demo-worker.container"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".container") && !strings.Contains(string(b), "WantedBy=default.target") {
			t.Errorf("%s:\n%s", f, b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "demo-worker", "lockstep-demo-worker.container"))
	if !strings.Contains(string(b), "After=lockstep-demo-web.service") || !strings.Contains(string(b), "Network=none") {
		t.Fatalf("demo-worker's unit:\n%s", b)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
