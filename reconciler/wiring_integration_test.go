package reconciler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/spec"
)

// Tests of issue 10's wiring on the real podman service: stacks, app networks, exports and secrets,
// read-only mounts of a dependency's data, optional dependencies, providers and pre-start hooks.

// recording is the real podman client, noting the containers it creates, starts and stops, in order.
type recording struct {
	*podman.Client
	mu    sync.Mutex
	calls []string
	names map[string]string // id -> name
}

func (r *recording) note(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recording) name(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.names[id]; ok {
		return n
	}
	return id
}

func (r *recording) List(ctx context.Context) ([]engine.Container, error) {
	cs, err := r.Client.List(ctx)
	r.mu.Lock()
	for _, c := range cs {
		r.names[c.ID] = c.Name
	}
	r.mu.Unlock()
	return cs, err
}

func (r *recording) Create(ctx context.Context, c spec.CreateRequest) (string, error) {
	id, err := r.Client.Create(ctx, c)
	r.mu.Lock()
	r.names[id] = c.Name
	r.mu.Unlock()
	r.note("create " + c.Name)
	return id, err
}

func (r *recording) Start(ctx context.Context, id string) error {
	r.note("start " + r.name(id))
	return r.Client.Start(ctx, id)
}

func (r *recording) Stop(ctx context.Context, id string, t time.Duration) error {
	r.note("stop " + r.name(id))
	return r.Client.Stop(ctx, id, t)
}

func (r *recording) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.calls, ", ")
	r.calls = nil
	return s
}

// record makes the fixture's reconciler use a recording client; log, when not nil, gets its log.
func (f *fixture) record(log *bytes.Buffer) *recording {
	rc := &recording{Client: f.client, names: map[string]string{}}
	cfg := reconciler.Config{AppsDir: f.apps, StateDir: filepath.Join(f.dir, "state"), Roots: rootsOf(f), ReachGrace: f.reachGrace, NetworkPrefix: f.netPrefix()}
	if log != nil {
		l := logrus.New()
		l.Out = log
		l.SetLevel(logrus.DebugLevel)
		cfg.Log = l
	}
	rec, err := reconciler.New(cfg, rc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.rec = rec
	return rc
}

// sleeper is a container body that runs until stopped.
const sleeper = `[sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']`

func (f *fixture) names2(ns ...string) { f.names = append(f.names, ns...) }

func TestStackInstallsInOrderAndRecreatesOnlyTheChangedContainer(t *testing.T) {
	f := newFixture(t)
	rc := f.record(nil)
	stack := func(apiEnv string) string {
		return fmt.Sprintf(`  containers:
    - name: db
      image: %[1]s
      command: %[2]s
      stop_grace_period: 1s
    - name: api
      image: %[1]s
      command: %[2]s
      env: {MODE: %[3]s}
      stop_grace_period: 1s
    - name: web
      image: %[1]s
      command: %[2]s
      stop_grace_period: 1s
`, bbImage, sleeper, apiEnv)
	}
	f.app("st", stack("one"))
	f.names2("st-db", "st-api", "st-web")
	r := f.pass()
	noFailures(t, r)
	if got, want := rc.take(), "create st-db, start st-db, create st-api, start st-api, create st-web, start st-web"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if len(r.Apps) != 1 || len(r.Apps[0].Containers) != 3 || r.Apps[0].State != "running" {
		t.Fatalf("report apps %+v", r.Apps)
	}
	for i, name := range []string{"db", "api", "web"} {
		if c := r.Apps[0].Containers[i]; c.Name != name || c.State != "running" || c.ContainerID == "" {
			t.Fatalf("container %d: %+v", i, c)
		}
	}
	ids := map[string]string{}
	for _, n := range []string{"st-db", "st-api", "st-web"} {
		ids[n] = f.id(n)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("second pass acted: %s", actions(r))
	}
	rc.take()
	f.app("st", stack("two"))
	r = f.pass()
	noFailures(t, r)
	if got := actions(r); got != "st:recreate" || !strings.HasPrefix(r.Actions[0].Cause, "api: spec changed") {
		t.Fatalf("actions %q %+v", got, r.Actions)
	}
	if got, want := rc.take(), "stop st-api, create st-api, start st-api"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if f.id("st-db") != ids["st-db"] || f.id("st-web") != ids["st-web"] || f.id("st-api") == ids["st-api"] {
		t.Fatal("a container other than api was recreated, or api was not")
	}
}

// Two apps may both have a container called db: each app's containers reach their own db by name,
// and never the other's, even when one depends on the other: a dependent's container that uses its
// dependency's values reaches only the containers it exports as hosts, by their podman names; the
// dependent's other containers are seen by no other app, its provider included (issue 16 point 3).
func TestTwoAppsDbContainersNeverSeeEachOther(t *testing.T) {
	f := newFixture(t)
	for _, app := range []string{"na", "nb"} {
		extra := "  exports: {api: {host: api}}\n"
		if app == "nb" {
			extra = "  requires: {apps: [na]}\n"
		}
		f.app(app, fmt.Sprintf(`  containers:
    - name: db
      image: %[1]s
      command: [sh, -c, 'echo %[2]s > /www/index.html; exec httpd -f -p 8080 -h /www']
      stop_grace_period: 1s
    - name: api
      image: %[1]s
      command: [sh, -c, 'echo api of %[4]s > /www/index.html; exec httpd -f -p 8080 -h /www']
      env: %[5]s
      stop_grace_period: 1s
%[3]s`, bbImage, "db of "+app, extra, app, map[string]string{"na": "{}", "nb": "{NA_API: '${na.api}'}"}[app]))
		f.names2(app+"-db", app+"-api")
	}
	noFailures(t, f.pass())
	// busybox-static's wget crashes in static glibc's resolver, so names are resolved with busybox's
	// own nslookup, which asks the network's DNS server (aardvark-dns) itself, and nc fetches the page.
	// The name is asked as is ("db."), as glibc and musl do once the search domain (dns.podman) gives
	// nothing: aardvark-dns 1.4 answers NAME.dns.podman only from the network whose server is asked,
	// but a bare name from every network the asking container is on.
	resolve := func(from, name string) (string, error) {
		out, err := f.pm.CLI("exec", from, "busybox", "nslookup", name+".")
		if err != nil {
			return "", fmt.Errorf("%v: %s", err, out)
		}
		_, after, found := strings.Cut(out, "Name:")
		if !found {
			return "", fmt.Errorf("no answer: %s", out)
		}
		var addrs []string
		for _, line := range strings.Split(after, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Address:"); ok {
				addrs = append(addrs, strings.TrimSpace(v))
			}
		}
		if len(addrs) != 1 {
			return "", fmt.Errorf("want one address, got %v: %s", addrs, out)
		}
		return addrs[0], nil
	}
	get := func(from, name string) (string, error) {
		var out string
		var err error
		for i := 0; i < 30; i++ {
			var ip string
			if ip, err = resolve(from, name); err == nil {
				out, err = f.pm.CLI("exec", from, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 "+ip+" 8080")
				if _, body, ok := strings.Cut(out, "\r\n\r\n"); err == nil && ok {
					return strings.TrimSpace(body), nil
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		return out, err
	}
	for _, tc := range []struct{ from, name, want string }{
		{"na-api", "db", "db of na"},
		{"nb-api", "db", "db of nb"}, // nb depends on na, and still its own db
		{"nb-db", "db", "db of nb"},
		{"nb-api", "na-api", "api of na"}, // na's exported host
	} {
		if out, err := get(tc.from, tc.name); err != nil || out != tc.want {
			t.Fatalf("%s reading http://%s:8080/: %q, %v; want %q", tc.from, tc.name, out, err, tc.want)
		}
	}
	for _, tc := range []struct{ from, name string }{
		{"na-db", "nb-db"}, {"nb-db", "na-db"}, // the two dbs
		{"na-db", "nb-api"}, // na does not depend on nb
		{"nb-api", "na-db"}, // na's db is not exported
		{"na-api", "nb-db"}, // the provider's exported api never sees the dependent's db
		{"nb-db", "na-api"}, // nor does nb's db, which uses nothing of na's, see na
	} {
		if ip, err := resolve(tc.from, tc.name); err == nil {
			t.Fatalf("%s resolved %s: %s", tc.from, tc.name, ip)
		}
	}
	net := func(name string) string {
		return strings.TrimSpace(f.pm.MustCLI(t, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name))
	}
	p := f.netPrefix()
	if got := net("na-db"); got != p+"na" {
		t.Fatalf("na-db is on networks %q", got)
	}
	if got := net("na-api"); got != p+"na "+p+"na_exports" {
		t.Fatalf("na-api is on networks %q", got)
	}
	if got := net("nb-db"); got != p+"nb" {
		t.Fatalf("nb-db is on networks %q", got)
	}
	if got := net("nb-api"); got != p+"na_exports "+p+"nb" {
		t.Fatalf("nb-api is on networks %q", got)
	}
	f.noOpIsOneRequest(nil)
}

// wireApps writes a provider with a secret, a consumer using it in a template and in env, and an app
// that depends on the provider without using the secret.
func wireApps(f *fixture) {
	tmpl := filepath.Join(f.dir, "tmpl")
	mkdirAll(f.t, tmpl)
	os.WriteFile(filepath.Join(tmpl, "prov.conf.tmpl"), []byte("rpcuser={{ export \"rpc_user\" }}\nrpcpassword={{ secret \"rpc_password\" }}\n"), 0o644)
	os.WriteFile(filepath.Join(tmpl, "cons.conf.tmpl"), []byte("host={{ dep \"chain\" \"rpc_host\" }}\npass={{ dep \"chain\" \"rpc_password\" }}\n{{ if has \"idx\" }}index={{ dep \"idx\" \"url\" }}{{ end }}\n"), 0o644)
	// Templates are relative to the manifest's directory: the fixture's apps dir; link them in.
	os.Symlink(filepath.Join(tmpl, "prov.conf.tmpl"), filepath.Join(f.apps, "prov.conf.tmpl"))
	os.Symlink(filepath.Join(tmpl, "cons.conf.tmpl"), filepath.Join(f.apps, "cons.conf.tmpl"))
	f.app("prov", fmt.Sprintf(`  provides: [chain]
  container:
    image: %s
    command: %s
    volumes: ["${APP_DATA}:/data"]
    stop_grace_period: 1s
  exports:
    rpc_host: {host: prov}
    rpc_user: {value: lockstep}
    rpc_password: {secret: true, shared: true}
  shared_paths: [pub]
  hooks:
    pre_start:
      - {name: prov-conf, template: prov.conf.tmpl, path: prov.conf, mode: "0600"}
`, bbImage, sleeper))
	f.app("cons", fmt.Sprintf(`  requires:
    apps: [chain]
    optional: [idx]
  container:
    image: %s
    command: %s
    env: {CHAIN_HOST: "${chain.rpc_host}", INDEX: "${idx.url}"}
    mounts: [{from: chain, path: pub, target: /chain}]
    stop_grace_period: 1s
  hooks:
    pre_start:
      - {name: cons-conf, template: cons.conf.tmpl, path: cons.conf, mode: "0600"}
`, bbImage, sleeper))
	f.app("bystander", fmt.Sprintf(`  requires: {apps: [chain]}
  container:
    image: %s
    command: %s
    env: {CHAIN_HOST: "${chain.rpc_host}"}
    stop_grace_period: 1s
`, bbImage, sleeper))
}

func TestSecretRotationRestartsExactlyTheConsumersOnceInOrderAndLeaksNowhere(t *testing.T) {
	f := newFixture(t)
	var log bytes.Buffer
	rc := f.record(&log)
	wireApps(f)
	mkdirAll(t, filepath.Join(f.data, "prov", "pub"))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "bystander:install cons:install prov:install" {
		t.Fatalf("first pass: %s", got)
	}
	if got := rc.take(); !strings.HasPrefix(got, "create prov, start prov, ") {
		t.Fatalf("the provider did not start first: %s", got)
	}
	secretFile := filepath.Join(f.dir, "state", "secrets", "prov", "rpc_password")
	b, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	secret1 := strings.TrimSpace(string(b))
	if len(secret1) != 64 {
		t.Fatalf("secret %d characters", len(secret1))
	}
	for _, p := range []string{secretFile, filepath.Join(f.data, "prov", "prov.conf"), filepath.Join(f.data, "cons", "cons.conf")} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", p, fi.Mode(), err)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(f.data, "cons", "cons.conf"))
	if string(conf) != "host=prov\npass="+secret1+"\n\n" {
		t.Fatalf("cons.conf = %q", conf)
	}
	if env := f.pm.MustCLI(t, "exec", "cons", "sh", "-c", "echo $CHAIN_HOST/$INDEX"); env != "prov/" {
		t.Fatalf("consumer env %q", env)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("second pass acted: %s", actions(r))
	}
	rc.take()

	if err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpRotateSecret, App: "prov", Name: "rpc_password"}); err != nil {
		t.Fatal(err)
	}
	r = f.pass()
	noFailures(t, r)
	if got := actions(r); got != "cons:restart prov:restart" {
		t.Fatalf("rotation pass: %s", got)
	}
	if got, want := rc.take(), "stop prov, start prov, stop cons, start cons"; got != want {
		t.Fatalf("rotation calls %q, want %q (provider first, each once, bystander untouched)", got, want)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after rotation acted: %s", actions(r))
	}
	b, _ = os.ReadFile(secretFile)
	secret2 := strings.TrimSpace(string(b))
	if secret2 == secret1 {
		t.Fatal("rotation kept the value")
	}
	if conf, _ := os.ReadFile(filepath.Join(f.data, "cons", "cons.conf")); !strings.Contains(string(conf), secret2) {
		t.Fatalf("cons.conf not re-rendered: %q", conf)
	}
	// The values are nowhere else: not in the log, the report or its file, nor a rotate error.
	rep, _ := json.Marshal(f.rec.Last())
	saved, _ := os.ReadFile(filepath.Join(f.dir, "state", "report.json"))
	err = f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpRotateSecret, App: "prov", Name: "nope"})
	if !errors.Is(err, reconciler.ErrNoSecret) {
		t.Fatalf("rotating an undeclared secret: %v", err)
	}
	for _, s := range []string{secret1, secret2} {
		for what, text := range map[string]string{"log": log.String(), "report": string(rep), "report file": string(saved), "error": err.Error()} {
			if strings.Contains(text, s) {
				t.Fatalf("a secret appears in the %s", what)
			}
		}
	}
	if log.Len() == 0 {
		t.Fatal("nothing was logged: the leak check saw nothing")
	}
}

func TestConsumerCannotWriteIntoItsProvidersData(t *testing.T) {
	f := newFixture(t)
	f.record(nil)
	wireApps(f)
	mkdirAll(t, filepath.Join(f.data, "prov", "pub"))
	os.WriteFile(filepath.Join(f.data, "prov", "pub", "tls.cert"), []byte("CERT\n"), 0o644)
	noFailures(t, f.pass())
	if out := f.pm.MustCLI(t, "exec", "cons", "cat", "/chain/tls.cert"); out != "CERT" {
		t.Fatalf("consumer reads %q", out)
	}
	if out, err := f.pm.CLI("exec", "cons", "sh", "-c", "echo evil > /chain/tls.cert"); err == nil {
		t.Fatalf("consumer wrote into its provider's data: %q", out)
	}
	if out, err := f.pm.CLI("exec", "cons", "sh", "-c", "echo evil > /chain/new"); err == nil {
		t.Fatalf("consumer created a file in its provider's data: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(f.data, "prov", "pub", "tls.cert")); string(b) != "CERT\n" {
		t.Fatalf("provider's file is now %q", b)
	}
}

func TestInstallingAnOptionalDependencyLaterChangesItsConsumersOnce(t *testing.T) {
	f := newFixture(t)
	f.record(nil)
	wireApps(f)
	noFailures(t, f.pass())
	f.app("idx", fmt.Sprintf(`  container:
    image: %s
    command: %s
    stop_grace_period: 1s
  exports:
    url: {value: "tcp://idx:50001"}
`, bbImage, sleeper))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "cons:recreate idx:install" {
		t.Fatalf("actions after installing the optional dependency: %s", got)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after acted: %s", actions(r))
	}
	if env := f.pm.MustCLI(t, "exec", "cons", "sh", "-c", "echo $INDEX"); env != "tcp://idx:50001" {
		t.Fatalf("consumer env INDEX=%q", env)
	}
	if conf, _ := os.ReadFile(filepath.Join(f.data, "cons", "cons.conf")); !strings.Contains(string(conf), "index=tcp://idx:50001") {
		t.Fatalf("cons.conf %q", conf)
	}
}

func TestRemovingANeededProviderIsRefused(t *testing.T) {
	f := newFixture(t)
	wireApps(f)
	err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpRemove, App: "prov"})
	if !errors.Is(err, reconciler.ErrNeeded) || !strings.Contains(err.Error(), "bystander (requires chain)") || !strings.Contains(err.Error(), "cons (requires chain)") {
		t.Fatalf("Disable(prov) = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(f.apps, "prov.yaml")); err != nil {
		t.Fatal("the refused removal touched the manifest")
	}
	// A second provider takes over: removing the first is then allowed.
	f.app("prov2", fmt.Sprintf("  provides: [chain]\n  container: {image: %s}\n  exports: {rpc_host: {host: prov2}, rpc_password: {secret: true, shared: true}}\n  shared_paths: [pub]\n", bbImage))
	if err := f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpRemove, App: "prov"}); err != nil {
		t.Fatalf("with another provider installed: %v", err)
	}
}

func TestFailingHookIsReportedByNameAndNothingStarts(t *testing.T) {
	f := newFixture(t)
	rc := f.record(nil)
	os.WriteFile(filepath.Join(f.apps, "bad.tmpl"), []byte("x={{ dep \"nothere\" \"k\" }}\n"), 0o644)
	f.app("hk", fmt.Sprintf(`  container:
    image: %s
    command: %s
    stop_grace_period: 1s
  hooks:
    pre_start:
      - {name: render-config, template: bad.tmpl, path: app.conf}
`, bbImage, sleeper))
	r := f.pass()
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "pre-start hook render-config: ") || !strings.Contains(r.Failures[0].Error, `dep "nothere"`) {
		t.Fatalf("failures %+v", r.Failures)
	}
	if calls := rc.take(); calls != "" {
		t.Fatalf("podman was asked to %s", calls)
	}
	// Fixed: one install. Then a template change restarts it exactly once.
	os.WriteFile(filepath.Join(f.apps, "bad.tmpl"), []byte("x=1\n"), 0o644)
	noFailures(t, f.pass())
	if got := rc.take(); got != "create hk, start hk" {
		t.Fatalf("after the fix: %s", got)
	}
	os.WriteFile(filepath.Join(f.apps, "bad.tmpl"), []byte("x=2\n"), 0o644)
	r = f.pass()
	if got := actions(r); got != "hk:restart" || !strings.Contains(r.Actions[0].Cause, "pre-start hook render-config changed app.conf") {
		t.Fatalf("after a template change: %s %+v", got, r.Actions)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("pass after acted: %s", actions(r))
	}
	if got := rc.take(); got != "stop hk, start hk" {
		t.Fatalf("calls %q", got)
	}
}

// Each container's stop_grace_period is its podman stop timeout, honoured on recreate and on removal:
// a container that needs 2 s to flush on SIGTERM finishes with a 4 s grace and is killed with 1 s.
func TestStopGracePeriodPerContainerIsHonoured(t *testing.T) {
	f := newFixture(t)
	f.record(nil)
	flush := `[sh, -c, 'trap "sleep 2; echo flushed > /data/$NAME; exit 0" TERM; while :; do sleep 0.2; done']`
	stack := func(mode string) string {
		return fmt.Sprintf(`  containers:
    - name: slow
      image: %[1]s
      command: %[2]s
      env: {NAME: slow-%[3]s}
      volumes: ["${APP_DATA}:/data"]
      stop_grace_period: 4s
    - name: quick
      image: %[1]s
      command: %[2]s
      env: {NAME: quick-%[3]s}
      volumes: ["${APP_DATA}:/data"]
      stop_grace_period: 1s
`, bbImage, flush, mode)
	}
	f.app("sg", stack("one"))
	f.names2("sg-slow", "sg-quick")
	noFailures(t, f.pass())
	if got := f.pm.MustCLI(t, "inspect", "--format", "{{.Config.StopTimeout}}", "sg-slow", "sg-quick"); strings.Fields(got)[0] != "4" || strings.Fields(got)[1] != "1" {
		t.Fatalf("stop timeouts %q", got)
	}
	time.Sleep(500 * time.Millisecond) // let the shells set their traps
	f.app("sg", stack("two"))
	noFailures(t, f.pass())
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(f.data, "sg", name))
		return err == nil
	}
	if !exists("slow-one") || exists("quick-one") {
		t.Fatalf("on recreate: slow flushed %v (want true), quick flushed %v (want false)", exists("slow-one"), exists("quick-one"))
	}
	time.Sleep(500 * time.Millisecond)
	os.Remove(filepath.Join(f.apps, "sg.yaml"))
	r := f.pass()
	noFailures(t, r)
	if !exists("slow-two") || exists("quick-two") {
		t.Fatalf("on removal: slow flushed %v (want true), quick flushed %v (want false)", exists("slow-two"), exists("quick-two"))
	}
}

// A dependency that died and is started again by a pass brings a restart of its running dependents
// once it is ready again (lnd after bitcoind; issue 16 point 1), on the real service: the repair pass
// starts the dependency only and says the dependent waits, the next pass (the dependency has no
// health check: running is ready) restarts the dependent once; an unrelated app is untouched.
func TestDependentsRestartAfterTheirDependencyRecovers(t *testing.T) {
	f := newFixture(t)
	rc := f.record(nil)
	body := fmt.Sprintf("  container:\n    image: %s\n    command: %s\n    stop_grace_period: 1s\n", bbImage, sleeper)
	f.app("dr-chain", body)
	f.app("dr-node", body+"  requires: {apps: [dr-chain]}\n")
	f.app("dr-other", body)
	noFailures(t, f.pass())
	started := func(n string) string { return f.pm.MustCLI(t, "inspect", "--format", "{{.State.StartedAt}}", n) }
	nodeStart, otherStart := started("dr-node"), started("dr-other")
	rc.take()
	f.pm.MustCLI(t, "kill", "dr-chain")
	f.pm.MustCLI(t, "wait", "dr-chain")
	r := f.pass()
	if got := actions(r); got != "dr-chain:start" || len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Error, "waiting for dr-chain to be healthy") {
		t.Fatalf("repair pass: actions %q, failures %+v", got, r.Failures)
	}
	if got, want := rc.take(), "start dr-chain"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	r = f.pass()
	noFailures(t, r)
	if got := actions(r); got != "dr-node:restart" {
		t.Fatalf("actions %q", got)
	}
	if got, want := rc.take(), "stop dr-node, start dr-node"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if started("dr-node") == nodeStart || started("dr-other") != otherStart {
		t.Fatal("the dependent was not restarted, or the unrelated app was")
	}
	if f.state("dr-node") != "running" || f.state("dr-chain") != "running" {
		t.Fatal("not running after the repair")
	}
}
