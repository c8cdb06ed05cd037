package reconciler

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/internal/redact"
)

// canary is a secret value kept in the state dir before the reconciler starts.
const canary = "c4n4ry5ecret0123456789abcdef0123456789abcdef0123456789abcdef0123"

// TestNoSecretInAnyMessage (issue 18, medium): a canary secret reaches no failure, action, saved
// report or log line on every path that formats one: the adoption mismatch (which quoted the expanded
// command: it now quotes the manifest's words), podman's create and start errors quoting a
// container's command or env, a template function given a value where a name belongs, and a log line
// of each. The messages that must carry the manifest's words still do.
func TestNoSecretInAnyMessage(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{"localhost/prov:1": true, "localhost/cons:1": true, "localhost/hook:1": true, "localhost/start:1": true},
		Containers: []engine.Container{{ID: "foreign1", Name: "prov", Image: "localhost/prov:1", State: "running"}},
		// a foreign container that runs the canary
		Inspected: map[string]*engine.Inspected{"foreign1": {ID: "foreign1", Name: "prov", Image: "localhost/prov:1", Command: []string{"sh", "-c", "serve --password=" + canary + " --old"}}},
		Fail: map[string]error{
			"Create cons":     errors.New("podman: creating container: exec: \"echo " + canary + "\": executable file not found"),
			"Start new-start": errors.New("OCI runtime error: env PW=" + canary + " rejected"),
		}}
	r := newTestReconciler(t, p, map[string]string{
		"prov":  "    command: [sh, -c, 'serve --password=${prov.pw}']\n  exports: {pw: {secret: true, shared: true}}\n",
		"cons":  "    command: [sh, -c, 'echo ${cons.pw}']\n  exports: {pw: {secret: true}}\n",
		"start": "    env: {PW: '${start.pw}'}\n  exports: {pw: {secret: true}}\n",
		"hook":  "  requires: {apps: [prov]}\n  hooks:\n    pre_start:\n      - {name: leak, template: leak.tmpl, path: leak.conf}\n",
	})
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "leak.tmpl"), []byte(`{{dep (dep "prov" "pw") "x"}}`), 0o644)
	for _, app := range []string{"prov", "cons", "start"} {
		os.MkdirAll(filepath.Join(r.cfg.StateDir, "secrets", app), 0o700)
		if err := os.WriteFile(filepath.Join(r.cfg.StateDir, "secrets", app, "pw"), []byte(canary+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var lines bytes.Buffer
	log := logrus.New()
	log.SetOutput(&lines)
	log.SetLevel(logrus.DebugLevel)
	log.AddHook(redact.Hook{Redact: r.Redact}) // as lockstepd does
	r.cfg.Log = log

	rep := r.Pass(context.Background(), "test")
	fs := failures(rep)
	for app, want := range map[string]string{
		"prov":  `manifest wants ["sh" "-c" "serve --password=${prov.pw}"]`,
		"cons":  "executable file not found",
		"start": "rejected",
		"hook":  "pre-start hook leak: ",
	} {
		if !strings.Contains(fs[app], want) {
			t.Errorf("%s: failure %q, want it to say %q", app, fs[app], want)
		}
	}
	var all []string
	for _, f := range rep.Failures {
		all = append(all, f.Error)
	}
	for _, a := range rep.Actions {
		all = append(all, a.Cause)
	}
	saved, err := os.ReadFile(filepath.Join(r.cfg.StateDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, string(saved))
	all = append(all, lines.String())
	for _, s := range all {
		if strings.Contains(s, canary) {
			t.Errorf("a message holds the secret: %s", s)
		}
	}
	if !strings.Contains(strings.Join(all, "\n"), "[secret]") {
		t.Error("nothing was redacted: the test reached no path that quotes the secret")
	}
}

// TestOperationErrorsAreRedacted: an operation's error (the D-Bus or HTTP caller's reply) carries no
// secret value, and still classifies (errors.Is).
func TestOperationErrorsAreRedacted(t *testing.T) {
	p := &fakePodman{ListErr: errors.New("podman: list: bad filter " + canary)}
	r := newTestReconciler(t, p, nil)
	os.MkdirAll(filepath.Join(r.cfg.StateDir, "secrets", "x"), 0o700)
	os.WriteFile(filepath.Join(r.cfg.StateDir, "secrets", "x", "pw"), []byte(canary+"\n"), 0o600)
	err := r.Apply(context.Background(), Op{Kind: OpPurge, App: "gone"})
	if err == nil || strings.Contains(err.Error(), canary) || !strings.Contains(err.Error(), "bad filter [secret]") || !errors.Is(err, p.ListErr) {
		t.Fatalf("purge error: %v", err)
	}
}
