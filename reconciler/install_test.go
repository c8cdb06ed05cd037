package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/policy"
)

func TestEnableDisablePurge(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, nil)
	cat := filepath.Join(t.TempDir(), "catalog")
	os.MkdirAll(cat, 0o755)
	r.cfg.CatalogDir = cat
	os.WriteFile(filepath.Join(cat, "web.yaml"), []byte("app:\n  id: web\n  name: Web\n  version: '1'\n  container:\n    image: localhost/web:1\n"), 0o644)
	os.WriteFile(filepath.Join(cat, "bad.yaml"), []byte("app:\n  id: bad\n  nme: x\n"), 0o644)

	if err := r.enable("web"); err != nil {
		t.Fatal(err)
	}
	if err := r.enable("web"); err != nil {
		t.Fatalf("enabling twice: %v", err)
	}
	link := filepath.Join(r.cfg.AppsDir, "web.yaml")
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(cat, "web.yaml") {
		t.Fatalf("link %q %v", target, err)
	}
	if err := r.enable("bad"); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("bad: %v", err)
	}
	if err := r.enable("none"); !errors.Is(err, ErrNoSuchApp) {
		t.Fatalf("none: %v", err)
	}
	if err := r.enable("../x"); !errors.Is(err, ErrNoSuchApp) {
		t.Fatalf("../x: %v", err)
	}
	data := r.cfg.Roots.AppData("web")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "keep"), []byte("x"), 0o644)
	if err := r.purge(context.Background(), "web"); err == nil {
		t.Fatal("purged an installed app's data")
	}
	if err := r.disable("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatal("link left behind")
	}
	if err := r.disable("web"); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("disabling twice: %v", err)
	}
	if err := r.purge(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("data left after purge")
	}
	if err := r.purge(context.Background(), ".."); err == nil {
		t.Fatal("purged outside the data root")
	}
	// An operator's own manifest is kept, hidden, when the app is removed.
	own := filepath.Join(r.cfg.AppsDir, "mine.yaml")
	os.WriteFile(own, []byte("app: {}\n"), 0o644)
	if err := r.disable("mine"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.cfg.AppsDir, ".mine.yaml.removed")); err != nil {
		t.Fatalf("operator's manifest lost: %v", err)
	}
}

// Installing an app whose requirement no installed app answers for is refused, naming the catalog
// apps that would; once a provider is installed it goes ahead.
func TestEnableNeedsItsDependencies(t *testing.T) {
	p := &fakePodman{Images: map[string]bool{}}
	r := newTestReconciler(t, p, nil)
	cat := filepath.Join(t.TempDir(), "catalog")
	os.MkdirAll(cat, 0o755)
	r.cfg.CatalogDir = cat
	write := func(id, body string) {
		os.WriteFile(filepath.Join(cat, id+".yaml"), []byte("app:\n  id: "+id+"\n  name: x\n  version: '1'\n  container: {image: 'localhost/x:1'}\n"+body), 0o644)
	}
	write("lnd", "  requires: {apps: [bitcoin], optional: [tor]}\n")
	write("bitcoin-knots", "  provides: [bitcoin]\n")
	write("bitcoin-core", "  provides: [bitcoin]\n")
	err := r.enable("lnd")
	if !errors.Is(err, ErrMissingDependency) || err.Error() != "missing dependency: lnd requires bitcoin (install bitcoin-core or bitcoin-knots), not installed" {
		t.Fatalf("Enable(lnd) = %v", err)
	}
	if err := r.enable("bitcoin-knots"); err != nil {
		t.Fatal(err)
	}
	if err := r.enable("lnd"); err != nil {
		t.Fatalf("with a provider installed: %v", err)
	}
	if err := r.disable("bitcoin-knots"); !errors.Is(err, ErrNeeded) {
		t.Fatalf("removing the provider: %v", err)
	}
}

// TestEnableHoldsToThePolicy (issue 18): Install refuses a catalog manifest the operator's policy
// refuses (a companion on the host's network as root), naming the key; with the grant it installs.
func TestEnableHoldsToThePolicy(t *testing.T) {
	r := newTestReconciler(t, &fakePodman{Images: map[string]bool{}}, nil)
	cat := filepath.Join(t.TempDir(), "catalog")
	os.MkdirAll(cat, 0o755)
	r.cfg.CatalogDir = cat
	os.WriteFile(filepath.Join(cat, "ui.yaml"), []byte("app:\n  id: ui\n  name: UI\n  version: '1'\n  container:\n    image: localhost/ui:1\n"+
		"  companions:\n    - {id: ui-x, image: 'localhost/ui:1', network: host, user: '0'}\n"), 0o644)
	err := r.enable("ui")
	if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "app.companions[0].network: the host's network is not granted to app ui (to allow it: apps.ui.host_network: true in /etc/lockstep/policy.yaml)") ||
		!strings.Contains(err.Error(), "app.companions[0].user:") {
		t.Fatalf("install of a manifest the policy refuses: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(r.cfg.AppsDir, "ui.yaml")); !os.IsNotExist(err) {
		t.Fatal("installed anyway")
	}
	r.cfg.Roots.Policy = &policy.Policy{Apps: map[string]policy.Grants{"ui": {HostNetwork: true, RootUser: true}}}
	if err := r.enable("ui"); err != nil {
		t.Fatalf("with the grants: %v", err)
	}
}
