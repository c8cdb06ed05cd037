package reconciler_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPolicyRefusesAnotherAppsDataOnPodman (issue 18, high): a manifest that binds the data root with
// :U (read-write access to every app's data, chowned by podman to the container's user) is held on
// real podman: no container, the other app's 0600 file keeps its owner, and the failure names the
// file, the field and the policy key that would allow it. On main the container was created and
// podman chowned every app's data to uid 1000.
func TestPolicyRefusesAnotherAppsDataOnPodman(t *testing.T) {
	f := newFixture(t)
	f.app("pol-victim", worker(bbImage))
	noFailures(t, f.pass())
	secret := filepath.Join(f.data, "pol-victim", "data", "wallet.dat")
	if err := os.WriteFile(secret, []byte("keys"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.app("pol-evil", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'cat /all/pol-victim/data/wallet.dat; sleep 1000']
    user: "1000:1000"
    volumes: ["%s:/all:U"]
    stop_grace_period: 1s
`, bbImage, f.data))
	r := f.pass()
	want := fmt.Sprintf("%s: app.container.volumes[0]: source %s is outside app pol-evil's data dir %s and every root granted to it (to allow it: apps.pol-evil.volume_roots in /etc/lockstep/policy.yaml, or lockstepd's --volume-root)",
		filepath.Join(f.apps, "pol-evil.yaml"), f.data, filepath.Join(f.data, "pol-evil"))
	if len(r.Failures) != 1 || r.Failures[0].App != "pol-evil" || r.Failures[0].Error != want {
		t.Fatalf("failures %+v\nwant %s", r.Failures, want)
	}
	if s := f.state("pol-evil"); s != "missing" {
		t.Fatalf("pol-evil's container is %s: the policy did not hold it", s)
	}
	fi, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the victim's file is now uid %d mode %v", st.Uid, fi.Mode().Perm())
	}
	if s := f.state("pol-victim"); s != "running" {
		t.Fatalf("the other app is %s", s)
	}
}

// TestBuildContextOutsideManifestDirOnPodman (issue 18, high): an absolute build.context, and a
// relative one that is a symlink out of the manifest's directory, are refused before any build: the
// image is never built, so no host directory (here one holding a "secret") is uploaded into it. On
// main the absolute context was tarred and built, and the image held the file.
func TestBuildContextOutsideManifestDirOnPodman(t *testing.T) {
	f := newFixture(t)
	outside := filepath.Join(f.dir, "state-like")
	mkdirAll(t, outside)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("0123abcd"), 0o600)
	os.WriteFile(filepath.Join(outside, "Containerfile"), []byte("FROM "+bbImage+"\nCOPY . /ctx\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(f.apps, "ctx-link")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ id, context, reason string }{
		{"pol-absctx", outside, fmt.Sprintf("app.container.build.context: %q must be a directory relative to the manifest's directory, not an absolute path", outside)},
		{"pol-linkctx", "ctx-link", fmt.Sprintf("app.container.build.context: \"ctx-link\" leads out of the manifest's directory %s (to %s, through a symlink)", f.apps, outside)},
	} {
		tag := "localhost/lockstep-test/" + tt.id + ":1"
		t.Cleanup(func() { f.pm.CLI("rmi", "--force", tag) })
		f.app(tt.id, fmt.Sprintf("  container:\n    build: {context: %q, tag: %q}\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n", tt.context, tag))
		r := f.pass()
		var got []string
		for _, fl := range r.Failures {
			if fl.App == tt.id {
				got = append(got, fl.Error)
			}
		}
		want := filepath.Join(f.apps, tt.id+".yaml") + ": " + tt.reason
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: failures %q\nwant %s", tt.id, got, want)
		}
		if f.imageExists(tag) {
			out, _ := f.pm.CLI("run", "--rm", tag, "cat", "/ctx/secret")
			t.Errorf("%s: the image was built from a context outside the manifest's directory (it holds %q)", tt.id, strings.TrimSpace(out))
		}
		os.Remove(filepath.Join(f.apps, tt.id+".yaml"))
	}
}

// TestMountOfAnUnsharedPathOnPodman (issue 18, high): mounts: [{from: X, path: "."}] mounted all of
// X's data dir (its 0600 config with another app's password included) with X only a dependency. On
// real podman the consumer is now held, no container is made, and the path X shares still mounts.
func TestMountOfAnUnsharedPathOnPodman(t *testing.T) {
	f := newFixture(t)
	f.app("pol-prov", worker(bbImage)+"  shared_paths: [data/public]\n")
	noFailures(t, f.pass())
	mkdirAll(t, filepath.Join(f.data, "pol-prov", "data", "public"))
	os.WriteFile(filepath.Join(f.data, "pol-prov", "data", "public", "tls.cert"), []byte("cert"), 0o644)
	os.WriteFile(filepath.Join(f.data, "pol-prov", "data", "lnd.conf"), []byte("bitcoind.rpcpass=x"), 0o600)
	f.app("pol-cons", fmt.Sprintf(`  requires: {apps: [pol-prov]}
  container:
    image: %s
    command: [sh, -c, 'cat /prov/data/lnd.conf; sleep 1000']
    mounts: [{from: pol-prov, path: ".", target: /prov}]
    stop_grace_period: 1s
`, bbImage))
	r := f.pass()
	want := filepath.Join(f.apps, "pol-cons.yaml") + `: app.container.mounts[0].path: "." is not a path app pol-prov shares (it shares: data/public); a provider shares data with shared_paths`
	if len(r.Failures) != 1 || r.Failures[0].Error != want {
		t.Fatalf("failures %+v\nwant %s", r.Failures, want)
	}
	if s := f.state("pol-cons"); s != "missing" {
		t.Fatalf("pol-cons's container is %s", s)
	}
	f.app("pol-cons", fmt.Sprintf(`  requires: {apps: [pol-prov]}
  container:
    image: %s
    command: [sh, -c, 'cat /prov/tls.cert; sleep 1000']
    mounts: [{from: pol-prov, path: data/public, target: /prov}]
    stop_grace_period: 1s
`, bbImage))
	noFailures(t, f.pass())
	if out := f.pm.MustCLI(t, "exec", "pol-cons", "cat", "/prov/tls.cert"); out != "cert" {
		t.Fatalf("the shared path: %q", out)
	}
}
