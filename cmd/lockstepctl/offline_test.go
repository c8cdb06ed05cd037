package main

import (
	"bytes"
	"errors"
	"github.com/lockstep/lockstep/internal/clidocs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

func TestRender(t *testing.T) {
	cat := "../../catalog/demo"
	apps := t.TempDir()
	code, out, errOut := runCtl("render", "demo-worker", "--catalog-dir", cat, "--apps-dir", apps)
	if code != 0 || out != "" || !strings.Contains(errOut, "demo-worker has no companions") {
		t.Fatalf("render demo-worker: exit %d %q %q", code, out, errOut)
	}
	code, _, errOut = runCtl("render", "nope", "--catalog-dir", cat, "--apps-dir", apps)
	if code != 1 || !strings.Contains(errOut, `no manifest for "nope"`) {
		t.Fatalf("render nope: exit %d %q", code, errOut)
	}
	writeApp(t, apps, "broken", "  nme: x\n")
	if code, _, errOut := runCtl("render", "broken", "--catalog-dir", cat, "--apps-dir", apps); code != 1 || !strings.Contains(errOut, "is not valid") {
		t.Fatalf("render broken: exit %d %q", code, errOut)
	}
	// The output format, with a renderer plugged in: units sorted by name, each after "# NAME".
	real := renderCompanions
	defer func() { renderCompanions = real }()
	renderCompanions = func(app *manifest.Loaded, _ manifest.Roots, _ map[string]string) (map[string][]byte, error) {
		return map[string][]byte{"b.container": []byte("[Container]\nImage=b\n"), "a.container": []byte("[Container]\nImage=a\n")}, nil
	}
	code, out, _ = runCtl("render", "demo-web", "--catalog-dir", cat, "--apps-dir", apps)
	if want := "# a.container\n[Container]\nImage=a\n\n# b.container\n[Container]\nImage=b\n"; code != 0 || out != want {
		t.Fatalf("render output %q", out)
	}
	renderCompanions = func(*manifest.Loaded, manifest.Roots, map[string]string) (map[string][]byte, error) {
		return nil, errors.New("boom")
	}
	if code, _, errOut := runCtl("render", "demo-web", "--catalog-dir", cat, "--apps-dir", apps); code != 1 || !strings.Contains(errOut, "boom") {
		t.Fatalf("render error: %d %q", code, errOut)
	}
}

func TestPlanErrors(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCtl("plan", "--podman-url", "unix://"+filepath.Join(dir, "none.sock"), "--apps-dir", dir, "--state-dir", filepath.Join(dir, "state"))
	if code != 1 || !strings.Contains(errOut, "podman is not reachable at unix://") || !strings.Contains(errOut, "systemctl start podman.socket") {
		t.Fatalf("plan without podman: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Fatal("plan created the state dir")
	}
	code, _, errOut = runCtl("plan", "--apps-dir", filepath.Join(dir, "missing"), "--state-dir", dir)
	if code != 1 || !strings.Contains(errOut, "reading the installed apps in") {
		t.Fatalf("plan with no apps dir: exit %d %q", code, errOut)
	}
}

func TestProgressLine(t *testing.T) {
	var buf syncBuffer
	stop := progress(&buf, "reconciling…", 10*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	stop()
	stop() // idempotent
	out := buf.String()
	if strings.Count(out, "\r\x1b[K") < 3 || !strings.Contains(out, "reconciling…") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Fatalf("progress output %q", out)
	}
	if !strings.Contains(out, "⠙ reconciling…") {
		t.Fatalf("spinner did not turn: %q", out)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 59 * time.Second: "59s", 90 * time.Second: "1m", 3 * time.Hour: "3h", 47 * time.Hour: "47h", 72 * time.Hour: "3d"} {
		if got := shortDuration(d); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}

// every command of the tree, hidden ones too.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}

func TestHelpEverywhere(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	n := 0
	for _, c := range allCommands(root) {
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		code, out, errOut := runCtl(args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errOut)
		}
		if c.Short == "" {
			t.Errorf("%s has no short description", c.CommandPath())
		}
		n++
	}
	if n < 14 {
		t.Fatalf("only %d commands", n)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_lockstepctl", "zsh": "#compdef lockstepctl", "fish": "complete -c lockstepctl"} {
		code, out, _ := runCtl("completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
	// Dynamic completion of a flag value.
	code, out, _ := runCtl("__complete", "status", "--color", "")
	if code != 0 || !strings.Contains(out, "always") || !strings.Contains(out, "never") {
		t.Fatalf("--color completion: %q", out)
	}
}

// TestGeneratedDocsUpToDate fails when docs/cli or docs/man differ from what the command tree
// generates: run make docs and commit the result.
func TestGeneratedDocsUpToDate(t *testing.T) {
	dir := t.TempDir()
	md, man := filepath.Join(dir, "cli"), filepath.Join(dir, "man")
	if err := clidocs.Docs(newRoot(&bytes.Buffer{}, &bytes.Buffer{}), md, man); err != nil {
		t.Fatal(err)
	}
	for gen, committed := range map[string]string{md: "../../docs/cli", man: "../../docs/man"} {
		want, _ := filepath.Glob(filepath.Join(gen, "*"))
		have, _ := filepath.Glob(filepath.Join(committed, "lockstepctl*"))
		if len(want) != len(have) {
			t.Errorf("%s has %d files, the code generates %d: run make docs", committed, len(have), len(want))
		}
		for _, f := range want {
			g, _ := os.ReadFile(f)
			c, err := os.ReadFile(filepath.Join(committed, filepath.Base(f)))
			if err != nil || !bytes.Equal(g, c) {
				t.Errorf("%s/%s is not what the code generates (%v): run make docs", committed, filepath.Base(f), err)
			}
		}
	}
	// Generating twice gives the same bytes (no dates or paths that vary).
	if err := clidocs.Docs(newRoot(&bytes.Buffer{}, &bytes.Buffer{}), filepath.Join(dir, "cli2"), filepath.Join(dir, "man2")); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(man, "lockstepctl-status.1"))
	b, _ := os.ReadFile(filepath.Join(dir, "man2", "lockstepctl-status.1"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("man pages differ between two runs")
	}
}

// TestGeneratedCompletionsUpToDate fails when packaging/completions differ from what
// `lockstepctl completion SHELL` prints: run make docs and commit the result.
func TestGeneratedCompletionsUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := clidocs.Completions(newRoot(&bytes.Buffer{}, &bytes.Buffer{}), dir); err != nil {
		t.Fatal(err)
	}
	for shell, name := range clidocs.CompletionFiles {
		g, _ := os.ReadFile(filepath.Join(dir, name))
		_, printed, _ := runCtl("completion", shell)
		if len(g) == 0 || string(g) != printed {
			t.Errorf("%s: the generated %s completion is not what lockstepctl completion %s prints", name, shell, shell)
		}
		c, err := os.ReadFile(filepath.Join("../../packaging/completions", name))
		if err != nil || !bytes.Equal(g, c) {
			t.Errorf("packaging/completions/%s is not what the code generates (%v): run make docs", name, err)
		}
	}
}

func TestRenderWithTheRealRenderer(t *testing.T) {
	code, out, errOut := runCtl("render", "demo-web", "--catalog-dir", "../../catalog/demo", "--apps-dir", t.TempDir(), "--data-root", "/var/lib/lockstep/apps")
	if code != 0 || !strings.HasPrefix(out, "# lockstep-demo-web-ui.container\n# Generated by lockstep") ||
		!strings.Contains(out, "Image=localhost/lockstep/busybox:demo") || !strings.Contains(out, "Volume=/var/lib/lockstep/apps/demo-web/www:/www:ro") {
		t.Fatalf("render: exit %d %q %q", code, out, errOut)
	}
	code, out, _ = runCtl("render", "demo-web", "--mode", "service", "--catalog-dir", "../../catalog/demo", "--apps-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "# lockstep-demo-web-ui.service") || !strings.Contains(out, "ExecStart=/usr/bin/podman") {
		t.Fatalf("render --mode service: exit %d %q", code, out)
	}
}

// A companion belongs to the app its row names, not to whatever app its id starts with: app web's
// view holds web-ui, not web-api's web-api-ui (nor its failures), nor web-old, whose row names no app
// (ids are not attributed by prefix any more); a companion's failure is its app's, whether it names
// the app (this lockstepd) or only the companion (an older one).
func TestFilterReportAttributesCompanionsByTheirApp(t *testing.T) {
	rep := &report.Report{
		Apps:       []report.AppStatus{{ID: "web", State: "running"}, {ID: "web-api", State: "running"}},
		Companions: []report.AppStatus{{ID: "web-api-ui", App: "web-api", State: "failed"}, {ID: "web-ui", App: "web", State: "active/running"}, {ID: "web-old", State: "active/running"}},
		Failures: []report.Failure{{App: "web-api-ui", Error: "unit failed"}, {App: "web-ui", Error: "restarting"},
			{App: "web-api", Error: "waiting for x", Subject: outcome.SubjectCompanion, Name: "web-api-ui"},
			{App: "web", Error: "stopping lockstep-web-ui.service: boom", Subject: outcome.SubjectCompanion, Name: "web-ui"},
			{App: "web-old", Error: "old"}},
		Actions: []report.ActionRec{{App: "web-api-ui", Action: "start-companion"}},
	}
	got, found := filterReport(rep, "web")
	var ids []string
	for _, c := range got.Companions {
		ids = append(ids, c.ID)
	}
	var errs []string
	for _, f := range got.Failures {
		errs = append(errs, f.Error)
	}
	if !found || strings.Join(ids, ",") != "web-ui" || len(got.Apps) != 1 || len(got.Actions) != 0 ||
		strings.Join(errs, ",") != "restarting,stopping lockstep-web-ui.service: boom" {
		t.Fatalf("web: found %v, companions %v, failures %q, %+v", found, ids, errs, got)
	}
	got, _ = filterReport(rep, "web-api")
	if len(got.Companions) != 1 || got.Companions[0].ID != "web-api-ui" || len(got.Failures) != 2 || len(got.Actions) != 1 {
		t.Fatalf("web-api: %+v", got)
	}
}
