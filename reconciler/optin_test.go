package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplateDepNeedsTheProvidersShare (issue 18): a template's dep reads a dependency's secret
// export only when the provider shares it (dep read any required app's secrets); the refused hook
// blocks the app, writes nothing, and its error names neither the secret's value nor the template's
// arguments, even when a template passes a secret value where a name belongs.
func TestTemplateDepNeedsTheProvidersShare(t *testing.T) {
	r := newTestReconciler(t, &fakePodman{Images: map[string]bool{}}, map[string]string{
		"prov": "  exports: {db: {secret: true}, rpc: {secret: true, shared: true}}\n",
		"cons": "  requires: {apps: [prov]}\n  exports: {own: {secret: true}}\n  hooks:\n    pre_start:\n" +
			"      - {name: shared, template: shared.tmpl, path: shared.conf}\n" +
			"      - {name: unshared, template: unshared.tmpl, path: unshared.conf}\n",
		"leak": "  requires: {apps: [prov]}\n  exports: {own: {secret: true}}\n  hooks:\n    pre_start:\n" +
			"      - {name: leak, template: leak.tmpl, path: leak.conf}\n",
	})
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "shared.tmpl"), []byte(`rpc={{dep "prov" "rpc"}}`), 0o644)
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "unshared.tmpl"), []byte(`db={{dep "prov" "db"}}`), 0o644)
	os.WriteFile(filepath.Join(r.cfg.AppsDir, "leak.tmpl"), []byte(`{{dep (secret "own") "rpc"}}`), 0o644)
	rep := r.Pass(context.Background(), "test")
	fs := failures(rep)
	if !strings.Contains(fs["cons"], "pre-start hook unshared: ") || !strings.Contains(fs["cons"], "dep: app prov does not share that secret") {
		t.Fatalf("cons: %q", fs["cons"])
	}
	data := r.cfg.Roots.AppData("cons")
	if b, err := os.ReadFile(filepath.Join(data, "shared.conf")); err != nil || !strings.HasPrefix(string(b), "rpc=") || len(b) != len("rpc=")+64 {
		t.Fatalf("the shared secret was not rendered: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, "unshared.conf")); !os.IsNotExist(err) {
		t.Fatalf("the unshared secret was rendered: %v", err)
	}
	own, err := r.secrets.peek("leak", "own")
	if err != nil || len(own) != 64 {
		t.Fatalf("leak's secret: %q %v", own, err)
	}
	db, _ := r.secrets.peek("prov", "db")
	for app, msg := range fs {
		for _, v := range []string{own, db} {
			if v != "" && strings.Contains(msg, v) {
				t.Fatalf("%s's failure holds a secret value: %q", app, msg)
			}
		}
	}
	if !strings.Contains(fs["leak"], "pre-start hook leak: ") || !strings.Contains(fs["leak"], "dep: its first argument is not a dependency") {
		t.Fatalf("leak: %q", fs["leak"])
	}
}
