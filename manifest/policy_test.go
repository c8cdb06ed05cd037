package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/policy"
)

// hostile is a catalog manifest that asks for root on the host every way issue 18 found accepted:
// for its container and its companion alike.
const hostile = `app:
  id: evil
  name: Evil
  version: "1"
  requires: {apps: [lnd]}
  container:
    image: localhost/evil:1
    capabilities: {add: [ALL, SYS_ADMIN]}
    network: host
    user: "0:0"
    volumes:
      - "/var/lib/lockstep/apps:/all:U,Z"
      - "/var/lib/lockstep/apps/lnd:/lnd"
      - "${APP_DATA}/own:/own:U,Z"
  companions:
    - id: evil-ui
      image: localhost/evil:1
      capabilities: {add: [SYS_MODULE]}
      network: lockstep-lnd
      user: root
      volumes: ["/srv/media:/m:z"]
`

func loadWith(t *testing.T, body string, pol *policy.Policy) Problems {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "evil.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ps := LoadFile(file, Roots{DataRoot: "/var/lib/lockstep/apps", Policy: pol})
	for i := range ps {
		ps[i].File = "evil.yaml"
	}
	return ps
}

// TestPolicyDeniesByDefault: with no policy every host-level ask of issue 18 is refused, for the
// app's container and its companion, each as FILE: FIELD: REASON naming the key that would allow it.
func TestPolicyDeniesByDefault(t *testing.T) {
	ps := loadWith(t, hostile, nil)
	want := []string{
		"evil.yaml: app.container.capabilities.add[0]: adding capability ALL is not granted to app evil (to allow it: apps.evil.capabilities in /etc/lockstep/policy.yaml)",
		"evil.yaml: app.container.capabilities.add[1]: adding capability CAP_SYS_ADMIN is not granted to app evil (to allow it: apps.evil.capabilities in /etc/lockstep/policy.yaml)",
		"evil.yaml: app.container.network: the host's network is not granted to app evil (to allow it: apps.evil.host_network: true in /etc/lockstep/policy.yaml)",
		`evil.yaml: app.container.user: "0:0" runs as root (user 0) in the container, which is not granted to app evil (to allow it: apps.evil.root_user: true in /etc/lockstep/policy.yaml)`,
		"evil.yaml: app.container.volumes[0]: source /var/lib/lockstep/apps is outside app evil's data dir /var/lib/lockstep/apps/evil and every root granted to it (to allow it: apps.evil.volume_roots in /etc/lockstep/policy.yaml, or lockstepd's --volume-root)",
		"evil.yaml: app.container.volumes[1]: source /var/lib/lockstep/apps/lnd is outside app evil's data dir /var/lib/lockstep/apps/evil and every root granted to it (to allow it: apps.evil.volume_roots in /etc/lockstep/policy.yaml, or lockstepd's --volume-root)",
		"evil.yaml: app.companions[0].capabilities.add[0]: adding capability CAP_SYS_MODULE is not granted to app evil (to allow it: apps.evil.capabilities in /etc/lockstep/policy.yaml)",
		`evil.yaml: app.companions[0].network: "lockstep-lnd" is lockstep's network of app lnd, which app evil may not join: an app joins its own network and its dependencies' exports networks (leave network unset), or the networks granted to it (to allow it: apps.evil.networks in /etc/lockstep/policy.yaml)`,
		`evil.yaml: app.companions[0].user: "root" runs as root (user 0) in the container, which is not granted to app evil (to allow it: apps.evil.root_user: true in /etc/lockstep/policy.yaml)`,
		"evil.yaml: app.companions[0].volumes[0]: source /srv/media is outside app evil's data dir /var/lib/lockstep/apps/evil and every root granted to it (to allow it: apps.evil.volume_roots in /etc/lockstep/policy.yaml, or lockstepd's --volume-root)",
	}
	if got := ps.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestPolicyGrants: each refusal goes away with the key it names, and only for the app it names;
// U/Z on a granted root outside the data dir still needs relabel_roots.
func TestPolicyGrants(t *testing.T) {
	pol, err := policy.Parse("/etc/lockstep/policy.yaml", []byte(`
apps:
  evil:
    capabilities: [ALL, CAP_SYS_ADMIN, SYS_MODULE]
    host_network: true
    root_user: true
    networks: [lockstep-lnd]
    volume_roots: [/var/lib/lockstep/apps, /srv/media]
    relabel_roots: [/srv/media]
`))
	if err != nil {
		t.Fatal(err)
	}
	ps := loadWith(t, hostile, pol)
	want := "evil.yaml: app.container.volumes[0]: option U chowns to the container's user the source /var/lib/lockstep/apps, outside app evil's data dir /var/lib/lockstep/apps/evil (to allow it: apps.evil.relabel_roots in /etc/lockstep/policy.yaml)"
	if ps.Error() != want {
		t.Fatalf("problems:\n%s\nwant:\n%s", ps.Error(), want)
	}
	other, _ := policy.Parse("/etc/lockstep/policy.yaml", []byte("apps:\n  other: {host_network: true, capabilities: [ALL]}\n"))
	if ps := loadWith(t, hostile, other); len(ps) != 10 {
		t.Fatalf("another app's grants applied to evil: %v", ps)
	}
	all, _ := policy.Parse("/etc/lockstep/policy.yaml", []byte("all_apps: {host_network: true}\n"))
	for _, p := range loadWith(t, hostile, all) {
		if p.Field == "app.container.network" {
			t.Fatalf("all_apps.host_network not applied: %v", p)
		}
	}
}

// TestPolicyNetworks: an app may name its own network, its dependencies' exports networks, bridge
// and none; never another app's lockstep network (issue 18: lockstep-APP and lockstep-APP_exports
// of an app it does not require were accepted).
func TestPolicyNetworks(t *testing.T) {
	base := "app:\n  id: evil\n  name: E\n  version: \"1\"\n  requires: {apps: [lnd], optional: [electrs]}\n  container:\n    image: localhost/e:1\n    network: %s\n"
	for n, ok := range map[string]bool{
		"lockstep-evil": true, "lockstep-evil_exports": true, "lockstep-lnd_exports": true, "lockstep-electrs_exports": true,
		"bridge": true, "none": true, "lockstep-lnd": false, "lockstep-bitcoin-knots_exports": false, "lockstep-electrs": false,
		"podman1": false, "host": false,
	} {
		ps := loadWith(t, strings.Replace(base, "%s", n, 1), nil)
		if (len(ps) == 0) != ok {
			t.Errorf("network %s: accepted=%v, want %v: %v", n, len(ps) == 0, ok, ps)
		}
	}
}

// TestBuildContextInsideManifestDir: an absolute context (issue 18: lockstepd tarred any host dir
// into the build), one with .., and one that leads out through a symlink are refused; a context and
// Containerfile inside the manifest's directory are accepted.
func TestBuildContextInsideManifestDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "Containerfile"), []byte("FROM scratch\n"), 0o644)
	os.Symlink("/etc", filepath.Join(dir, "out"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "src", "Evilfile"))
	body := func(ctx, cf string) string {
		return "app:\n  id: b\n  name: B\n  version: \"1\"\n  container:\n    build: {context: \"" + ctx + "\", containerfile: \"" + cf + "\", tag: \"localhost/b:1\"}\n"
	}
	for _, tt := range []struct{ ctx, cf, want string }{
		{"src", "Containerfile", ""},
		{"/var/lib/lockstep", "Containerfile", `app.container.build.context: "/var/lib/lockstep" must be a directory relative to the manifest's directory, not an absolute path`},
		{"src/../..", "Containerfile", "app.container.build.context: \"src/../..\" must not contain .."},
		{"out", "Containerfile", `app.container.build.context: "out" leads out of the manifest's directory`},
		{"src", "Evilfile", `app.container.build.containerfile: containerfile "Evilfile" leads out of the build context`},
	} {
		file := filepath.Join(dir, "b.yaml")
		os.WriteFile(file, []byte(body(tt.ctx, tt.cf)), 0o644)
		_, ps := LoadFile(file, Roots{DataRoot: "/var/lib/lockstep/apps"})
		if tt.want == "" {
			if len(ps) > 0 {
				t.Errorf("%s: %v", tt.ctx, ps)
			}
			continue
		}
		if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), file+": "+tt.want) {
			t.Errorf("%s/%s: %v\nwant %s", tt.ctx, tt.cf, ps, tt.want)
		}
	}
}

// TestProvidersOptIn (issue 18, high): another app mounts a provider's data only at the paths the
// provider shares (mounts: [{from: X, path: "."}] mounted all of X's data dir), and reads its secret
// exports only those it shares; the consumer must require it (Validate). A companion is held to the
// same; an app's own data and secrets are its own.
func TestProvidersOptIn(t *testing.T) {
	dir := t.TempDir()
	write := func(id, body string) string {
		f := filepath.Join(dir, id+".yaml")
		os.WriteFile(f, []byte("app:\n  id: "+id+"\n  name: "+id+"\n  version: '1'\n"+body), 0o644)
		return f
	}
	write("prov", "  provides: [chain]\n  container: {image: 'localhost/p:1'}\n  shared_paths: [public]\n"+
		"  exports: {mac: {secret: true}, pw: {secret: true, shared: true}, host: {host: prov}}\n")
	cons := write("cons", `  requires: {apps: [chain]}
  exports: {own: {secret: true}}
  container:
    image: 'localhost/c:1'
    env: {MAC: '${chain.mac}', PW: '${chain.pw}', H: '${chain.host}', OWN: '${cons.own}'}
    mounts:
      - {from: chain, path: ".", target: /all}
      - {from: chain, path: public/tls.cert, target: /tls.cert}
      - {from: chain, path: publicity, target: /p}
  companions:
    - id: cons-ui
      image: 'localhost/c:1'
      mounts: [{from: chain, path: lnd.conf, target: /x}, {from: cons, path: ".", target: /own}]
`)
	s := LoadFiles([]string{filepath.Join(dir, "prov.yaml"), cons}, Roots{DataRoot: "/var/lib/lockstep/apps"})
	want := []string{
		cons + ": app.container.mounts[0].path: \".\" is not a path app prov shares (it shares: public); a provider shares data with shared_paths",
		cons + ": app.container.mounts[2].path: \"publicity\" is not a path app prov shares (it shares: public); a provider shares data with shared_paths",
		cons + ": app.container.env.MAC: ${chain.mac}: app prov does not share its secret mac (a provider shares a secret export with shared: true)",
		cons + ": app.companions[0].mounts[0].path: \"lnd.conf\" is not a path app prov shares (it shares: public); a provider shares data with shared_paths",
	}
	if got := s.Problems.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if s.ByID("prov") == nil || !s.Invalid["cons"] {
		t.Fatalf("the consumer, not the provider, is held: %v %v", s.Apps, s.Invalid)
	}
	// shared only goes with a secret; shared_paths are relative.
	bad := write("bad", "  container: {image: 'localhost/b:1'}\n  shared_paths: [/etc, ../x]\n  exports: {v: {value: '1', shared: true}}\n")
	_, ps := LoadFile(bad, Roots{DataRoot: "/var/lib/lockstep/apps"})
	if len(ps) != 3 || ps[0].Field != "app.exports.v.shared" || ps[1].Field != "app.shared_paths[0]" || ps[2].Field != "app.shared_paths[1]" {
		t.Fatalf("%v", ps)
	}
}
