package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var roots = Roots{DataRoot: "/var/lib/lockstep/apps", Extra: []string{"/srv/media"}}

const good = `app:
  id: web
  name: Web
  version: 1.0.0
  container:
    image: docker.io/library/nginx:1.27
    command: [nginx, -g, daemon off;]
    env: {TZ: UTC}
    ports: ["127.0.0.1:8080:80/tcp", "9090:90", "53/udp"]
    volumes: ["${APP_DATA}/html:/usr/share/nginx/html:ro", "/srv/media/films:/films"]
    network: host
    capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
    user: "1000:1000"
    read_only: true
    restart: unless-stopped
    stop_grace_period: 30s
    probes: [{port: 80, path: /healthz}]
  health: {command: [wget, -q, http://127.0.0.1/], interval: 30s, timeout: 10s, retries: 3, start_period: 2m}
  requires: {apps: [], disk_gb: 1.5}
  hooks:
    pre_start:
      - {template: nginx.conf.tmpl, path: conf/nginx.conf, mode: "0640"}
  companions:
    - id: web-ui
      image: localhost/web-ui:1
      ports: ["8081:80"]
  registry: {insecure: ["127.0.0.1:5000"]}
`

func TestParseGood(t *testing.T) {
	a, ps := Parse("web.yaml", []byte(good))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if ps := Validate("web.yaml", a, roots); len(ps) > 0 {
		t.Fatal(ps)
	}
	if a.Container.StopGracePeriod.D().Seconds() != 30 || a.Health.StartPeriod.D().Minutes() != 2 || a.Requires.DiskGB != 1.5 {
		t.Fatalf("decoded %+v", a)
	}
}

// mutate returns the good manifest with one line replaced.
func mutate(old, new string) string {
	if !strings.Contains(good, old) {
		panic("no " + old)
	}
	return strings.Replace(good, old, new, 1)
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // FIELD: REASON prefixes, in order
	}{
		{"unknown key suggests", mutate("    image:", "    imag:"), []string{`app.container.imag: unknown key (did you mean "image"?)`}},
		{"unknown key far from all", mutate("  name: Web", "  colour: red"), []string{"app.colour: unknown key (line 3)"}},
		{"wrong type", mutate("read_only: true", "read_only: yes please"), []string{`app.container.read_only: want true or false, got "yes please"`}},
		{"list expected", mutate(`command: [nginx, -g, daemon off;]`, "command: nginx"), []string{`app.container.command: want a list, got "nginx"`}},
		{"bad duration", mutate("interval: 30s", "interval: often"), []string{"app.health.interval: want a duration"}},
		{"duplicate key", mutate("  name: Web", "  name: Web\n  name: Again"), []string{"app.name: duplicate key"}},
		{"alias", mutate("  name: Web", "  name: &n Web\n  description: *n"), []string{"app.description: YAML aliases are not allowed"}},
		{"bad id", mutate("id: web", "id: Web_1"), []string{`app.id: "Web_1" is not a valid id`}},
		{"missing image", mutate("    image: docker.io/library/nginx:1.27\n", ""), []string{"app.container.image: missing"}},
		{"bad image", mutate("image: docker.io/library/nginx:1.27", "image: Docker.io/NGINX::1"), []string{"app.container.image: invalid image reference"}},
		{"newline in command", mutate(`command: [nginx, -g, daemon off;]`, `command: [nginx, "-g\nExecStart=/bin/evil"]`), []string{"app.container.command[1]: contains a newline"}},
		{"NUL in env", mutate("env: {TZ: UTC}", `env: {TZ: "U\0TC"}`), []string{"app.container.env.TZ: contains a newline, NUL"}},
		{"escape in name", mutate("  name: Web", "  name: \"We\\eb\""), []string{"app.name: contains a newline"}},
		{"bad env key", mutate("env: {TZ: UTC}", "env: {1TZ: UTC}"), []string{`app.container.env.1TZ: "1TZ" is not a valid variable name`}},
		{"port out of range", mutate(`"9090:90"`, `"99999:90"`), []string{`app.container.ports[1]: "99999:90": host port "99999"`}},
		{"port bad ip", mutate(`"127.0.0.1:8080:80/tcp"`, `"localhost:8080:80/tcp"`), []string{`app.container.ports[0]: "localhost:8080:80/tcp": host address "localhost"`}},
		{"port bad proto", mutate(`"53/udp"`, `"53/sctp"`), []string{`app.container.ports[2]: "53/sctp": protocol "sctp"`}},
		{"port clash in app", mutate(`"9090:90"`, `"8080:90"`), []string{"app.container.ports[1]: host port 8080/tcp is already published by app.container.ports[0]"}},
		{"relative volume", mutate(`"/srv/media/films:/films"`, `"./films:/films"`), []string{`app.container.volumes[1]: "./films:/films": source "./films" is not an absolute path`}},
		{"named volume", mutate(`"/srv/media/films:/films"`, `"films:/films"`), []string{"app.container.volumes[1]:"}},
		{"volume escapes", mutate(`"/srv/media/films:/films"`, `"${APP_DATA}/../other:/x"`), []string{"contains .."}},
		{"volume bad option", mutate(`:/usr/share/nginx/html:ro"`, `:/usr/share/nginx/html:rox"`), []string{`app.container.volumes[0]:`}},
		{"bad network", mutate("network: host", "network: \"bad net\""), []string{`app.container.network: "bad net" is not bridge, host, none`}},
		{"bad cap", mutate("add: [NET_BIND_SERVICE]", "add: [net bind]"), []string{"app.container.capabilities.add[0]:"}},
		{"bad restart", mutate("restart: unless-stopped", "restart: sometimes"), []string{`app.container.restart: "sometimes" is not one of`}},
		{"bad user", mutate(`user: "1000:1000"`, `user: "a b"`), []string{"app.container.user:"}},
		{"self dependency", mutate("apps: []", "apps: [web]"), []string{"app.requires.apps[0]: an app cannot require itself"}},
		{"negative disk", mutate("disk_gb: 1.5", "disk_gb: -1"), []string{"app.requires.disk_gb: must not be negative"}},
		{"hook escapes data dir", mutate("path: conf/nginx.conf", "path: ../../etc/passwd"), []string{"app.hooks.pre_start[0].path:"}},
		{"hook bad mode", mutate(`mode: "0640"`, `mode: "rw-r"`), []string{"app.hooks.pre_start[0].mode:"}},
		{"companion id clash", mutate("id: web-ui", "id: web"), []string{`app.companions[0].id: "web" is used twice`}},
		{"companion bad image", mutate("image: localhost/web-ui:1", "image: \"\""), []string{"app.companions[0].image: empty image reference"}},
		{"bad insecure registry", mutate(`insecure: ["127.0.0.1:5000"]`, `insecure: ["http://x"]`), []string{"app.registry.insecure[0]:"}},
		{"build and image differ", mutate("    image: docker.io/library/nginx:1.27\n", "    image: a:1\n    build: {context: ., tag: b:1}\n"), []string{"app.container.image: \"a:1\" differs from build.tag"}},
		{"build without tag", mutate("    image: docker.io/library/nginx:1.27\n", "    build: {context: src}\n"), []string{"app.container.build.tag: missing"}},
		{"not yaml", "app: [", []string{"-: not valid YAML"}},
		{"empty", "", []string{"-: file is empty"}},
		{"no app", "other: 1\n", []string{`other: unknown key`}},
		{"two documents", good + "---\n" + good, []string{"-: more than one YAML document"}},
		{"binary", "app:\x00\x01", []string{"-: file contains NUL bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ps := Parse("web.yaml", []byte(tt.in))
			if len(ps) == 0 {
				ps = Validate("web.yaml", a, roots)
			}
			if len(ps) < len(tt.want) {
				t.Fatalf("got %d problems, want at least %d: %v", len(ps), len(tt.want), ps)
			}
			for i, w := range tt.want {
				got := strings.TrimPrefix(ps[i].String(), "web.yaml: ")
				if !strings.HasPrefix(got, w) && !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got, w)
				}
				if !strings.HasPrefix(ps[i].String(), "web.yaml: ") {
					t.Errorf("problem %q does not name the file", ps[i])
				}
			}
		})
	}
}

func TestDeepNestingIsBounded(t *testing.T) {
	in := "app:\n  id: x\n  description: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n"
	_, ps := Parse("deep.yaml", []byte(in))
	if len(ps) == 0 {
		t.Fatal("deeply nested manifest accepted")
	}
}

func TestOversizeFileRejected(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "big.yaml")
	os.WriteFile(f, make([]byte, MaxFileSize+10), 0o644)
	_, ps := LoadFile(f, roots)
	if len(ps) != 1 || !strings.Contains(ps[0].Reason, "larger than") {
		t.Fatalf("%v", ps)
	}
}

func writeApp(t *testing.T, dir, id, extra string) {
	t.Helper()
	y := "app:\n  id: " + id + "\n  name: " + id + "\n  version: '1'\n  container:\n    image: localhost/x:1\n" + extra
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDirCrossChecks(t *testing.T) {
	dir := t.TempDir()
	writeApp(t, dir, "a", "    ports: [\"8080:80\"]\n")
	os.Chtimes(filepath.Join(dir, "a.yaml"), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)) // installed first
	writeApp(t, dir, "b", "    ports: [\"127.0.0.1:8080:81\"]\n")                                    // clashes with a (a binds every address)
	writeApp(t, dir, "c", "    ports: [\"127.0.0.2:8080:81\"]\n")                                    // clashes with a as well
	writeApp(t, dir, "d", "    ports: [\"8080:80/udp\"]\n  requires: {apps: [e]}\n")                 // udp: no clash; requires e
	writeApp(t, dir, "e", "  requires: {apps: [d]}\n")                                               // cycle d <-> e
	writeApp(t, dir, "f", "  requires: {apps: [nope]}\n")                                            // unknown dependency
	writeApp(t, dir, "g", "  requires: {apps: [broken]}\n")                                          // dependency with a bad manifest
	writeApp(t, dir, "ok", "  requires: {apps: [h]}\n")
	writeApp(t, dir, "h", "")
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("app: {id: broken, nme: x}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "wrongname.yaml"), []byte("app: {id: other, name: x, version: '1', container: {image: 'x:1'}}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a manifest"), 0o644)
	os.Symlink(filepath.Join(dir, "missing-target.yaml"), filepath.Join(dir, "dangling.yaml"))
	os.Symlink(filepath.Join(dir, "loop.yaml"), filepath.Join(dir, "loop.yaml"))

	s, err := LoadDir(dir, roots)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range s.Apps {
		ids = append(ids, a.ID)
	}
	if diff := cmp.Diff([]string{"a", "h", "ok"}, ids); diff != "" {
		t.Fatalf("valid apps (-want +got):\n%s\nproblems:\n%v", diff, s.Problems)
	}
	for _, id := range []string{"b", "c", "d", "e", "f", "g", "broken", "wrongname", "dangling", "loop"} {
		if !s.Invalid[id] {
			t.Errorf("%s not marked invalid", id)
		}
	}
	all := s.Problems.Error()
	for _, want := range []string{
		"b.yaml: app.container.ports[0]: host port 8080/tcp is also published by app a (" + filepath.Join(dir, "a.yaml") + ": app.container.ports[0])",
		"c.yaml: app.container.ports[0]: host port 8080/tcp is also published by app a",
		"d.yaml: app.requires.apps: dependency cycle: d -> e -> d",
		`f.yaml: app.requires.apps[0]: requires app "nope", which is not installed`,
		`g.yaml: app.requires.apps[0]: requires app "broken", whose manifest is invalid`,
		`broken.yaml: app.nme: unknown key (did you mean "name"?)`,
		`wrongname.yaml: app.id: "other" does not match the file name`,
		"dangling.yaml: -: cannot read",
		"loop.yaml: -: cannot read",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing problem %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "README") {
		t.Error("non-manifest file reported")
	}
}

// Of two apps that clash (a host port, a podman name, a companion id), the one whose file came or
// changed later is held and the other keeps its supervision: an edit that makes the clash holds the
// edited app, never the one already running.
func TestClashHoldsTheLaterApp(t *testing.T) {
	dir := t.TempDir()
	writeApp(t, dir, "btc-a", "    ports: [\"127.0.0.1:28555:8333\"]\n  companions: [{id: ui, image: 'x:1'}]\n")
	writeApp(t, dir, "btc-b", "    ports: [\"127.0.0.1:28555:8333\"]\n  companions: [{id: ui, image: 'x:1'}]\n")
	old := time.Now().Add(-time.Hour)
	for _, tc := range []struct{ first, later string }{{"btc-a", "btc-b"}, {"btc-b", "btc-a"}} {
		os.Chtimes(filepath.Join(dir, tc.first+".yaml"), old, old)
		os.Chtimes(filepath.Join(dir, tc.later+".yaml"), time.Now(), time.Now())
		s, err := LoadDir(dir, roots)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Apps) != 1 || s.Apps[0].ID != tc.first || !s.Invalid[tc.later] || s.Invalid[tc.first] {
			t.Fatalf("%s first: apps %v invalid %v", tc.first, s.Apps, s.Invalid)
		}
		all := s.Problems.Error()
		for _, want := range []string{
			tc.later + ".yaml: app.container.ports[0]: host port 28555/tcp is also published by app " + tc.first + " (" + filepath.Join(dir, tc.first+".yaml"),
			tc.later + `.yaml: app.companions[0].id: companion id "ui" is already used by app ` + tc.first + " (" + filepath.Join(dir, tc.first+".yaml") + ")",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("missing %q in:\n%s", want, all)
			}
		}
		if strings.Contains("\n"+all, "\n"+filepath.Join(dir, tc.first+".yaml")+":") {
			t.Errorf("the earlier app has a problem:\n%s", all)
		}
		// Installing the later one next to the earlier: Conflicts names both files.
		l, _ := LoadFile(filepath.Join(dir, tc.later+".yaml"), roots)
		if ps := s.Conflicts(l); len(ps) != 2 || !strings.Contains(ps.Error(), filepath.Join(dir, tc.first+".yaml")) {
			t.Errorf("Conflicts: %v", ps)
		}
	}
}

func TestLoadDirUnreadable(t *testing.T) {
	if _, err := LoadDir(filepath.Join(t.TempDir(), "none"), roots); err == nil {
		t.Fatal("missing dir gave no error")
	}
}

func TestShippedCatalogIsValid(t *testing.T) {
	s, err := LoadDir("../catalog/demo", Roots{DataRoot: "/var/lib/lockstep/apps"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) > 0 {
		t.Fatal(s.Problems)
	}
	if len(s.Apps) < 3 {
		t.Fatalf("demo catalog has %d apps", len(s.Apps))
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		wantErr bool
	}{
		{"80", Port{ContainerPort: 80, Protocol: "tcp"}, false},
		{"8080:80", Port{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, false},
		{"127.0.0.1:8080:80/udp", Port{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "udp"}, false},
		{"[::1]:8080:80", Port{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, false},
		{":80", Port{}, true},
		{"0:80", Port{}, true},
		{"a:b:c:d", Port{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.in, err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("%s: got %+v want %+v", tt.in, got, tt.want)
		}
	}
}

func TestCacheSeesChanges(t *testing.T) {
	dir := t.TempDir()
	writeApp(t, dir, "a", "")
	c := NewCache()
	s1, _ := c.LoadDir(dir, roots)
	s2, _ := c.LoadDir(dir, roots)
	if len(s1.Apps) != 1 || s1.Apps[0] != s2.Apps[0] {
		t.Fatal("unchanged manifest was parsed again")
	}
	writeApp(t, dir, "a", "    command: [changed]\n")
	s3, _ := c.LoadDir(dir, roots)
	if len(s3.Apps) != 1 || len(s3.Apps[0].Container.Command) != 1 {
		t.Fatalf("changed manifest not reloaded: %+v", s3.Apps)
	}
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("app: {id: a, bad: 1}\n"), 0o644)
	if s4, _ := c.LoadDir(dir, roots); len(s4.Apps) != 0 || !s4.Invalid["a"] {
		t.Fatal("broken manifest served from cache")
	}
	os.Remove(filepath.Join(dir, "a.yaml"))
	if s5, _ := c.LoadDir(dir, roots); len(s5.Apps)+len(s5.Invalid) != 0 {
		t.Fatal("removed manifest served from cache")
	}
}

// The wiring fields: stacks, exports, provides, optional dependencies, mounts and hooks.
func TestWiringProblems(t *testing.T) {
	head := "app:\n  id: web\n  name: Web\n  version: '1'\n"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"container and containers", "  container: {image: 'a:1'}\n  containers: [{name: db, image: 'a:1'}]\n", `app.container: set either app.container (one container) or app.containers (a stack), not both`},
		{"unnamed stack member", "  containers: [{image: 'a:1'}]\n", `app.containers[0].name: missing`},
		{"duplicate member", "  containers: [{name: db, image: 'a:1'}, {name: db, image: 'a:1'}]\n", `app.containers[1].name: "db" is already the name of app.containers[0]`},
		{"named single container", "  container: {name: x, image: 'a:1'}\n", `app.container.name: only a stack's containers`},
		{"app health in a stack", "  health: {command: [true]}\n  containers: [{name: db, image: 'a:1'}]\n", `app.health: a stack's containers each declare their own health`},
		{"member health", "  containers: [{name: db, image: 'a:1', health: {command: []}}]\n", `app.containers[0].health.command: missing`},
		{"export with two kinds", "  container: {image: 'a:1'}\n  exports: {pw: {value: x, secret: true}}\n", `app.exports.pw: set exactly one of value, host and secret`},
		{"export host unknown", "  containers: [{name: db, image: 'a:1'}]\n  exports: {h: {host: api}}\n", `app.exports.h.host: "api" is not a container of this app (db)`},
		{"export bad name", "  container: {image: 'a:1'}\n  exports: {Bad-Name: {value: x}}\n", `app.exports.Bad-Name: "Bad-Name" is not a valid export name`},
		{"ref to an undeclared app", "  container: {image: 'a:1', env: {X: '${db.host}'}}\n", `app.container.env.X: ${db.host}: db is not named in requires.apps or requires.optional`},
		{"ref to an own missing export", "  container: {image: 'a:1', command: ['${web.port}']}\n", `app.container.command[0]: ${web.port}: this app exports no port`},
		{"mount from a non-dependency", "  container: {image: 'a:1', mounts: [{from: lnd, path: tls.cert, target: /tls.cert}]}\n", `app.container.mounts[0].from: "lnd" is not a dependency named in requires`},
		{"mount escapes", "  requires: {apps: [lnd]}\n  container: {image: 'a:1', mounts: [{from: lnd, path: ../x, target: /x}]}\n", `app.container.mounts[0].path: "../x" must be a path relative to the dependency's data directory`},
		{"optional twice", "  requires: {apps: [lnd], optional: [lnd]}\n  container: {image: 'a:1'}\n", `app.requires.optional[0]: "lnd" is named twice in requires`},
		{"provides itself", "  provides: [web]\n  container: {image: 'a:1'}\n", `app.provides[0]: an app is itself already`},
		{"hook with neither", "  container: {image: 'a:1'}\n  hooks: {pre_start: [{path: x}]}\n", `app.hooks.pre_start[0]: set template (render a file) or owner (fix ownership of path)`},
		{"hook bad owner", "  container: {image: 'a:1'}\n  hooks: {pre_start: [{path: x, owner: bitcoin}]}\n", `app.hooks.pre_start[0].owner: "bitcoin" is not UID:GID (numbers)`},
		{"hook unknown container", "  containers: [{name: db, image: 'a:1'}]\n  hooks: {pre_start: [{template: t, path: x, containers: [api]}]}\n", `app.hooks.pre_start[0].containers[0]: "api" is not a container of this app (db)`},
		{"hook names clash", "  container: {image: 'a:1'}\n  hooks: {pre_start: [{template: t, path: x}, {template: u, path: x}]}\n", `app.hooks.pre_start[1].name: "x" is already the name of app.hooks.pre_start[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ps := Parse("web.yaml", []byte(head+tt.in))
			if len(ps) == 0 {
				ps = Validate("web.yaml", a, roots)
			}
			found := false
			for _, p := range ps {
				found = found || p.String() == "web.yaml: "+tt.want || strings.HasPrefix(p.String(), "web.yaml: "+tt.want)
			}
			if !found {
				t.Fatalf("want %q, got %v", tt.want, ps)
			}
		})
	}
	// A valid stack with wiring has no problems, and its members are named APP-NAME.
	ok := head + `  requires: {apps: [bitcoin], optional: [electrs]}
  provides: [explorer]
  exports: {api: {host: api}, db_password: {secret: true}, port: {value: "8999"}}
  containers:
    - {name: db, image: 'a:1', env: {PW: '${web.db_password}'}}
    - {name: api, image: 'a:1', env: {RPC: '${bitcoin.rpc_host}', EL: '${electrs.host}'}, mounts: [{from: bitcoin, path: cookie, target: /cookie}]}
  hooks: {pre_start: [{name: conf, template: t.tmpl, path: conf/x.conf, mode: "0600", owner: "1000:1000", containers: [api]}, {path: data, owner: "999:999"}]}
`
	a, ps := Parse("web.yaml", []byte(ok))
	if len(ps) == 0 {
		ps = Validate("web.yaml", a, roots)
	}
	if len(ps) > 0 {
		t.Fatalf("valid stack: %v", ps)
	}
	var names []string
	for _, m := range a.Members() {
		names = append(names, m.PodmanName)
	}
	if strings.Join(names, " ") != "web-db web-api" {
		t.Fatalf("members %v", names)
	}
}

// Providers: an app whose id is the name answers for it; otherwise the first provider by id.
func TestProviders(t *testing.T) {
	mk := func(id string, provides ...string) *Loaded {
		return &Loaded{App: App{ID: id, Provides: provides}}
	}
	p := Providers([]*Loaded{mk("bitcoin-knots", "bitcoin"), mk("bitcoin-core", "bitcoin")})
	if p["bitcoin"] != "bitcoin-core" || p["bitcoin-knots"] != "bitcoin-knots" {
		t.Fatalf("two providers: %v", p)
	}
	p = Providers([]*Loaded{mk("bitcoin-knots", "bitcoin"), mk("bitcoin")})
	if p["bitcoin"] != "bitcoin" {
		t.Fatalf("an app named bitcoin: %v", p)
	}
}

// A pre-start template must exist and parse when the manifest is loaded (validate says so), and the
// dependencies it asks values of are recorded per hook (issue 16 points 2 and 10).
func TestTemplatesAreCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	hooks := "  requires: {apps: [bitcoin]}\n  hooks:\n    pre_start:\n      - {name: conf, template: lnd.conf.tmpl, path: lnd.conf}\n      - {name: own, path: state, owner: '1000:1000'}\n"
	writeApp(t, dir, "lnd", hooks)
	_, ps := LoadFile(filepath.Join(dir, "lnd.yaml"), roots)
	if want := filepath.Join(dir, "lnd.yaml") + ": app.hooks.pre_start[0].template: " + filepath.Join(dir, "lnd.conf.tmpl") + ": cannot read: no such file or directory"; ps.Error() != want {
		t.Fatalf("missing template: %v\nwant %s", ps, want)
	}
	os.WriteFile(filepath.Join(dir, "lnd.conf.tmpl"), []byte("{{dep \"bitcoin\""), 0o644)
	if _, ps := LoadFile(filepath.Join(dir, "lnd.yaml"), roots); len(ps) != 1 || !strings.Contains(ps[0].Reason, "unclosed action") {
		t.Fatalf("broken template: %v", ps)
	}
	os.WriteFile(filepath.Join(dir, "lnd.conf.tmpl"), []byte("rpchost={{dep \"bitcoin\" \"rpc_host\"}}\n"), 0o644)
	l, ps := LoadFile(filepath.Join(dir, "lnd.yaml"), roots)
	if len(ps) > 0 || fmt.Sprint(l.HookDeps) != "[[bitcoin] []]" {
		t.Fatalf("%v %v", l, ps)
	}
}

// In env and command, ${APP.NAME} is expanded and $${ is a literal ${; anything else that looks like
// a variable (${APP_DATA}, ${HOME}, a shell default ${a-${b}}) is refused, not passed on as it is
// (issue 16 point 10).
func TestEnvReferencesExpandOrAreRefused(t *testing.T) {
	dir := t.TempDir()
	writeApp(t, dir, "lnd", `    env: {A: "${APP_DATA}/x", B: "${a-${b}}", C: "${X}", OK: "$${HOME} ${lnd.p}"}
    command: [sh, -c, 'echo ${HOME}']
  exports: {p: {value: "9735"}}
  hooks:
    pre_start:
      - {name: t, template: t.tmpl, path: .}
      - {path: ., owner: "1000:1000"}
`)
	os.WriteFile(filepath.Join(dir, "t.tmpl"), nil, 0o644)
	_, ps := LoadFile(filepath.Join(dir, "lnd.yaml"), roots)
	all := ps.Error()
	for _, want := range []string{
		`app.container.env.A: "${APP_DATA}" is not a reference lockstep expands (${APP.NAME}; ${APP_DATA} only in volumes): write $${APP_DATA} to give the container a literal ${APP_DATA}`,
		`app.container.env.B: "${a-${b}" is not a reference`,
		`app.container.env.C: "${X}" is not a reference`,
		`app.container.command[2]: "${HOME}" is not a reference`,
		`app.hooks.pre_start[0].path: "." is the data directory itself`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if len(ps) != 5 {
		t.Errorf("%d problems:\n%s", len(ps), all)
	}
	if got := Expand("$${HOME} ${lnd.p} $${lnd.p}", func(app, name string) string { return "9735" }); got != "${HOME} 9735 ${lnd.p}" {
		t.Errorf("Expand: %q", got)
	}
}
