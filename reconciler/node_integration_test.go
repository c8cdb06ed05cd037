package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// Tests of issue 16 on the real podman service, with apps shaped as the node app stores package them
// (a bitcoind, an electrs, an lnd with its macaroon, a mempool-like stack), not like the demo.

// catalog makes the fixture's reconciler install from a catalog dir of its own, returned.
func (f *fixture) catalog(cfg func(*reconciler.Config)) string {
	f.t.Helper()
	cat := filepath.Join(f.dir, "catalog")
	mkdirAll(f.t, cat)
	c := reconciler.Config{AppsDir: f.apps, CatalogDir: cat, StateDir: filepath.Join(f.dir, "state"), Roots: rootsOf(f),
		ReachGrace: f.reachGrace, NetworkPrefix: f.netPrefix()}
	if cfg != nil {
		cfg(&c)
	}
	rec, err := reconciler.New(c, f.client)
	if err != nil {
		f.t.Fatal(err)
	}
	f.rec = rec
	return cat
}

func (f *fixture) install(id string) error {
	return f.rec.Apply(context.Background(), reconciler.Op{Kind: reconciler.OpInstall, App: id})
}

// noOpIsOneRequest asserts that a pass now, by a reconciler of the same config on a counting proxy,
// acts on nothing and asks podman exactly one thing (its List).
func (f *fixture) noOpIsOneRequest(cfg func(*reconciler.Config)) {
	f.t.Helper()
	sockDir, err := os.MkdirTemp("", "lsp") // a unix socket's path is short
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { os.RemoveAll(sockDir) })
	proxy := testenv.StartCountingProxy(f.t, sockDir, f.pm.Socket)
	counted := podman.New(proxy.URL())
	if err := counted.Connect(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	c := reconciler.Config{AppsDir: f.apps, CatalogDir: filepath.Join(f.dir, "catalog"), StateDir: filepath.Join(f.dir, "state"),
		Roots: rootsOf(f), ReachGrace: f.reachGrace, NetworkPrefix: f.netPrefix(), RollbackSettle: -1}
	if cfg != nil {
		cfg(&c)
	}
	rec, err := reconciler.New(c, counted)
	if err != nil {
		f.t.Fatal(err)
	}
	proxy.Reset()
	r := rec.Pass(context.Background(), "test")
	if len(r.Actions) != 0 {
		f.t.Fatalf("no-op pass acted: %+v", r.Actions)
	}
	if n := proxy.Count(); n != 1 {
		f.t.Fatalf("no-op pass made %d podman API requests, want exactly 1", n)
	}
}

func writeCatalog(t *testing.T, dir, id, body string) string {
	t.Helper()
	writeManifest(t, dir, id, body)
	return filepath.Join(dir, id+".yaml")
}

// bitcoind is a bitcoind as the stores package it: unless-stopped, its data dir mounted, a long stop.
func bitcoind(port int, extra string) string {
	return fmt.Sprintf(`  provides: [bitcoin]
  exports:
    rpc_host: {host: %%s}
    rpc_port: {value: "8332"}
  container:
    image: %s
    command: [sh, -c, 'trap "exit 0" TERM; mkdir -p /data/.bitcoin; exec httpd -f -p 8333 -h /data']
    ports: ["127.0.0.1:%d:8333"]
    volumes: ["${APP_DATA}/data:/data"]
    restart: unless-stopped
    stop_grace_period: 1s
%s`, bbImage, port, extra)
}

func btc(id string, port int, extra string) string {
	return fmt.Sprintf(bitcoind(port, extra), id)
}

// Point 5: an install that would publish the host port of an app already running is refused at
// Install, naming both files; an operator's own file that clashes is held, and the running app keeps
// its supervision (killed, it is started again).
func TestClashingInstallIsRefusedAndTheRunningAppKeepsItsSupervision(t *testing.T) {
	f := newFixture(t)
	cat := f.catalog(nil)
	port := freePort(t)
	writeCatalog(t, cat, "btc-a", btc("btc-a", port, ""))
	fileB := writeCatalog(t, cat, "btc-b", btc("btc-b", port, ""))
	f.names2("btc-a", "btc-b")
	if err := f.install("btc-a"); err != nil {
		t.Fatal(err)
	}
	noFailures(t, f.pass())
	err := f.install("btc-b")
	if !errors.Is(err, reconciler.ErrInvalidManifest) {
		t.Fatalf("installing btc-b: %v", err)
	}
	if want := fmt.Sprintf("%s: app.container.ports[0]: host port %d/tcp is also published by app btc-a (%s: app.container.ports[0])",
		fileB, port, filepath.Join(f.apps, "btc-a.yaml")); !strings.Contains(err.Error(), want) {
		t.Fatalf("installing btc-b: %v\nwant it to say %s", err, want)
	}
	if _, err := os.Lstat(filepath.Join(f.apps, "btc-b.yaml")); !os.IsNotExist(err) {
		t.Fatalf("btc-b is installed after all: %v", err)
	}
	// The operator links it in by hand: btc-b is held, btc-a is still lockstep's.
	if err := os.Symlink(fileB, filepath.Join(f.apps, "btc-b.yaml")); err != nil {
		t.Fatal(err)
	}
	// Only btc-b is held: btc-a keeps a valid manifest (a slow start may still show it unreachable
	// on a loaded machine; that is not what this test is about).
	r := f.pass()
	var held []report.Failure
	for _, fl := range r.Failures {
		if fl.App == "btc-b" || fl.Class == outcome.ClassInvalidManifest {
			held = append(held, fl)
		}
	}
	if len(held) != 1 || held[0].App != "btc-b" || !strings.Contains(held[0].Error, "btc-a") {
		t.Fatalf("failures %+v", r.Failures)
	}
	f.pm.MustCLI(t, "kill", "btc-a")
	f.pm.MustCLI(t, "wait", "btc-a")
	r = f.pass()
	if got := actions(r); got != "btc-a:start" {
		t.Fatalf("after btc-a was killed: %s (%+v)", got, r.Failures)
	}
	if f.state("btc-a") != "running" || f.state("btc-b") != "missing" {
		t.Fatalf("btc-a %s, btc-b %s", f.state("btc-a"), f.state("btc-b"))
	}
	f.noOpIsOneRequest(nil)
}

// Point 6: an install refused for disk is not installed and answers for nothing: the smaller
// variant installed next is the provider electrs binds to. The error names the file and the field,
// and gives the free space exactly, in GB as disk_gb declares it.
func TestDiskRefusedInstallIsNotLeftInstalled(t *testing.T) {
	f := newFixture(t)
	var free uint64
	cat := f.catalog(func(c *reconciler.Config) {
		c.FreeBytes = func(p string) (uint64, error) {
			var st unix.Statfs_t
			err := unix.Statfs(p, &st)
			free = st.Bavail * uint64(st.Bsize)
			return free, err
		}
	})
	big := writeCatalog(t, cat, "bitcoin-core", btc("bitcoin-core", freePort(t), "  requires: {disk_gb: 1000000}\n"))
	writeCatalog(t, cat, "bitcoin-pruned", btc("bitcoin-pruned", freePort(t), "  requires: {disk_gb: 0.001}\n"))
	writeCatalog(t, cat, "electrs", fmt.Sprintf(`  requires: {apps: [bitcoin]}
  container:
    image: %s
    command: %s
    env: {ELECTRS_DAEMON_RPC_ADDR: "${bitcoin.rpc_host}:${bitcoin.rpc_port}"}
    restart: on-failure
    stop_grace_period: 1s
`, bbImage, sleeper))
	f.names2("bitcoin-core", "bitcoin-pruned", "electrs")
	err := f.install("bitcoin-core")
	if !errors.Is(err, reconciler.ErrInsufficientDisk) {
		t.Fatalf("installing bitcoin-core: %v", err)
	}
	if want := fmt.Sprintf("%s: app.requires.disk_gb: needs 1000000 GB free at %s, which has %s GB free", big, f.dir, reconciler.ExactGB(free)); err.Error() != want {
		t.Fatalf("installing bitcoin-core:\n %v\nwant\n %s", err, want)
	}
	if _, err := os.Lstat(filepath.Join(f.apps, "bitcoin-core.yaml")); !os.IsNotExist(err) {
		t.Fatalf("bitcoin-core is installed after all: %v", err)
	}
	for _, id := range []string{"bitcoin-pruned", "electrs"} {
		if err := f.install(id); err != nil {
			t.Fatalf("installing %s: %v", id, err)
		}
	}
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "bitcoin-pruned:install electrs:install" {
		t.Fatalf("actions %s", got)
	}
	if env := f.pm.MustCLI(t, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", "electrs"); !strings.Contains(env, "ELECTRS_DAEMON_RPC_ADDR=bitcoin-pruned:8332") {
		t.Fatalf("electrs env:\n%s", env)
	}
	f.noOpIsOneRequest(nil)
}

// Point 4: a manifest's restart policy (lnd, mempool and electrs ship on-failure or unless-stopped)
// is lockstep's to carry out, under its backoff: podman's own policy on the container is no, so a
// container that exits at start is started exactly as often as the report says.
func TestRestartPolicyIsCarriedOutByLockstepUnderItsBackoff(t *testing.T) {
	f := newFixture(t)
	f.app("lnd", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'echo start >> /data/starts; echo "unable to connect to bitcoind" >&2; exit 1']
    volumes: ["${APP_DATA}:/data"]
    restart: on-failure
    stop_grace_period: 1s
`, bbImage))
	starts := 0
	var last *report.Report
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		last = f.pass()
		for _, a := range last.Actions {
			if a.App == "lnd" && (a.Action == "install" || a.Action == "start") {
				starts++
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	if got := f.pm.MustCLI(t, "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", "lnd"); got != "" && got != "no" {
		t.Fatalf("podman's restart policy on the container is %q", got)
	}
	b, err := os.ReadFile(filepath.Join(f.data, "lnd", "starts"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "start"); n != starts || starts != 2 {
		t.Fatalf("the container started %d times, lockstep started it %d times (want 2: the install, one restart, then backoff)", n, starts)
	}
	if len(last.Failures) != 1 || !strings.Contains(last.Failures[0].Error, "restart backoff after 1 restarts") {
		t.Fatalf("report failures %+v", last.Failures)
	}
}

// Points 2 and 3: a stack's members join a dependency's exports network only when they use its
// values, so installing an optional dependency (electrs, for mempool) recreates exactly the member
// that uses it; lnd, which takes bitcoind's values in its config template only, joins bitcoind's.
func TestOptionalDependencyRecreatesOnlyTheMemberThatUsesIt(t *testing.T) {
	f := newFixture(t)
	f.app("bitcoind", btc("bitcoind", freePort(t), ""))
	os.WriteFile(filepath.Join(f.apps, "lnd.conf.tmpl"), []byte("[Bitcoind]\nbitcoind.rpchost={{dep \"bitcoin\" \"rpc_host\"}}:{{dep \"bitcoin\" \"rpc_port\"}}\n"), 0o644)
	f.app("lnd", fmt.Sprintf(`  requires: {apps: [bitcoin]}
  container:
    image: %s
    command: %s
    volumes: ["${APP_DATA}:/root/.lnd"]
    restart: on-failure
    stop_grace_period: 1s
  hooks:
    pre_start:
      - {name: config, template: lnd.conf.tmpl, path: lnd.conf, mode: "0600"}
`, bbImage, sleeper))
	member := func(name, env string) string {
		return fmt.Sprintf("    - name: %s\n      image: %s\n      command: %s\n      env: %s\n      restart: on-failure\n      stop_grace_period: 1s\n", name, bbImage, sleeper, env)
	}
	f.app("mempool", "  requires: {apps: [bitcoin], optional: [electrs]}\n  containers:\n"+
		member("db", "{MYSQL_DATABASE: mempool}")+
		member("api", `{CORE_RPC_HOST: "${bitcoin.rpc_host}", ELECTRUM_HOST: "${electrs.host}", DATABASE_HOST: db}`)+
		member("web", "{BACKEND_MAINNET_HTTP_HOST: api}")+
		member("cron", "{MEMPOOL_BACKEND: api}"))
	f.names2("mempool-db", "mempool-api", "mempool-web", "mempool-cron", "electrs")
	noFailures(t, f.pass())
	net := func(name string) string {
		return strings.TrimSpace(f.pm.MustCLI(t, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name))
	}
	p := f.netPrefix()
	for name, want := range map[string]string{"lnd": p + "bitcoind_exports " + p + "lnd", "mempool-api": p + "bitcoind_exports " + p + "mempool", "mempool-db": p + "mempool", "mempool-web": p + "mempool"} {
		if got := net(name); got != want {
			t.Fatalf("%s is on networks %q, want %q", name, got, want)
		}
	}
	ids := map[string]string{}
	for _, n := range []string{"bitcoind", "lnd", "mempool-db", "mempool-api", "mempool-web", "mempool-cron"} {
		ids[n] = f.id(n)
	}
	f.app("electrs", fmt.Sprintf(`  requires: {apps: [bitcoin]}
  exports: {host: {host: electrs}}
  container:
    image: %s
    command: %s
    env: {ELECTRS_DAEMON_RPC_ADDR: "${bitcoin.rpc_host}:${bitcoin.rpc_port}"}
    restart: on-failure
    stop_grace_period: 1s
`, bbImage, sleeper))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "electrs:install mempool:recreate" {
		t.Fatalf("actions %s (%+v)", got, r.Actions)
	}
	for n, id := range ids {
		if changed := f.id(n) != id; changed != (n == "mempool-api") {
			t.Errorf("%s recreated: %v", n, changed)
		}
	}
	if got := net("mempool-api"); got != p+"bitcoind_exports "+p+"electrs_exports "+p+"mempool" {
		t.Fatalf("mempool-api is on networks %q", got)
	}
	f.noOpIsOneRequest(nil)
}

// Point 10: an ownership fix of the whole data dir (path: .) runs, so an app running as its own user
// can write there; $${HOME} reaches the container as ${HOME}, for its shell to expand.
func TestOwnershipOfTheDataDirAndALiteralVariable(t *testing.T) {
	f := newFixture(t)
	f.app("rtl", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'echo "home=$${HOME}" > /data/env; exec sh -c "trap \"exit 0\" TERM; while :; do sleep 1; done"']
    user: "1000:1000"
    volumes: ["${APP_DATA}:/data"]
    restart: unless-stopped
    stop_grace_period: 1s
  hooks:
    pre_start:
      - {name: data, path: ., owner: "1000:1000"}
`, bbImage))
	noFailures(t, f.pass())
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(f.data, "rtl"), &st); err != nil || st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("data dir owner %d:%d, %v", st.Uid, st.Gid, err)
	}
	if cmd := f.pm.MustCLI(t, "inspect", "--format", "{{json .Config.Cmd}}", "rtl"); !strings.Contains(cmd, `home=${HOME}`) {
		t.Fatalf("command %s", cmd)
	}
	var b []byte
	for i := 0; i < 50 && len(b) == 0; i++ {
		time.Sleep(100 * time.Millisecond)
		b, _ = os.ReadFile(filepath.Join(f.data, "rtl", "env"))
	}
	if s := strings.TrimSpace(string(b)); !strings.HasPrefix(s, "home=/") {
		t.Fatalf("the container wrote %q", s)
	}
	f.noOpIsOneRequest(nil)
}

// Point 8: when lnd rewrites the macaroon a UI mounts read-only (in place, or replaced by a rename as
// lncli does), the UI is restarted exactly once, and the pass after is a no-op.
func TestRewrittenCredentialRestartsItsConsumerOnce(t *testing.T) {
	f := newFixture(t)
	pub := filepath.Join(f.data, "lnd", "public")
	mkdirAll(t, pub)
	os.WriteFile(filepath.Join(pub, "admin.macaroon"), []byte("0201036c6e6402f801"), 0o644) // an lnd that ran before
	f.app("lnd", fmt.Sprintf(`  exports: {host: {host: lnd}, rest_port: {value: "8080"}}
  shared_paths: [public]
  container:
    image: %s
    command: %s
    volumes: ["${APP_DATA}:/data"]
    restart: on-failure
    stop_grace_period: 1s
`, bbImage, sleeper))
	f.app("lnd-ui", fmt.Sprintf(`  requires: {apps: [lnd]}
  container:
    image: %s
    command: [sh, -c, 'cat /lnd/admin.macaroon >> /data/read; echo >> /data/read; trap "exit 0" TERM; while :; do sleep 1; done']
    env: {LND_REST: "${lnd.host}:${lnd.rest_port}"}
    volumes: ["${APP_DATA}:/data"]
    mounts: [{from: lnd, path: public, target: /lnd}]
    restart: unless-stopped
    stop_grace_period: 1s
`, bbImage))
	r := f.pass()
	noFailures(t, r)
	if got := actions(r); got != "lnd:install lnd-ui:install" {
		t.Fatalf("first pass: %s", got)
	}
	if r := f.pass(); len(r.Actions) != 0 {
		t.Fatalf("second pass: %s", actions(r))
	}
	read := func(n int) string {
		t.Helper()
		var s string
		for i := 0; i < 50; i++ {
			b, _ := os.ReadFile(filepath.Join(f.data, "lnd-ui", "read"))
			if s = string(b); strings.Count(s, "\n") >= n {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return s
	}
	if got := read(1); got != "0201036c6e6402f801\n" {
		t.Fatalf("lnd-ui read %q", got)
	}
	for i, rewrite := range []string{
		"printf 0201036c6e6402f802 > /data/public/admin.macaroon",                                       // in place
		"printf 0201036c6e6402f803 > /data/public/.m && mv /data/public/.m /data/public/admin.macaroon", // replaced
	} {
		f.pm.MustCLI(t, "exec", "lnd", "sh", "-c", rewrite)
		r := f.pass()
		noFailures(t, r)
		if got := actions(r); got != "lnd-ui:restart" || !strings.Contains(r.Actions[0].Cause, "files it mounts read-only changed") {
			t.Fatalf("after rewrite %d: %s %+v", i, got, r.Actions)
		}
		if r := f.pass(); len(r.Actions) != 0 {
			t.Fatalf("pass after the restart: %s", actions(r))
		}
		if got, want := read(i+2), "0201036c6e6402f801\n0201036c6e6402f802\n"+map[int]string{0: "", 1: "0201036c6e6402f803\n"}[i]; got != want {
			t.Fatalf("lnd-ui read %q, want %q", got, want)
		}
	}
	// lnd crashes, is started again and rewrites its macaroon as it comes up: lnd-ui waits for it,
	// then is restarted exactly once (its dependency's restart and the new file are one restart).
	f.pm.MustCLI(t, "kill", "lnd")
	f.pm.MustCLI(t, "wait", "lnd")
	r = f.pass()
	if got := actions(r); got != "lnd:start" {
		t.Fatalf("after lnd was killed: %s", got)
	}
	f.pm.MustCLI(t, "exec", "lnd", "sh", "-c", "printf 0201036c6e6402f804 > /data/public/admin.macaroon")
	restarts := 0
	for i := 0; i < 5; i++ {
		r = f.pass()
		for _, a := range r.Actions {
			if a.App != "lnd-ui" || a.Action != "restart" {
				t.Fatalf("pass %d after lnd's restart: %+v", i, r.Actions)
			}
			restarts++
		}
	}
	if restarts != 1 {
		t.Fatalf("lnd-ui restarted %d times after lnd's restart, want 1", restarts)
	}
	if got := read(4); !strings.HasSuffix(got, "0201036c6e6402f804\n") || strings.Count(got, "\n") != 4 {
		t.Fatalf("lnd-ui read %q", got)
	}
	f.noOpIsOneRequest(nil)
}

// Point 10: the report of the pass that starts a killed container again shows it starting, not the
// killed container's health.
func TestReportAfterARestartShowsTheNewContainersHealth(t *testing.T) {
	f := newFixture(t)
	f.app("bitcoind", btc("bitcoind", freePort(t), "  health: {command: [sh, -c, 'test -d /data/.bitcoin'], interval: 1s, retries: 1}\n"))
	w := watchHealth(t, f.rec, f)
	noFailures(t, f.pass())
	w.waitFor(t, "bitcoind=healthy")
	if r := f.pass(); r.Apps[0].Health != "healthy" {
		t.Fatalf("health %q", r.Apps[0].Health)
	}
	w.close()
	f.pm.MustCLI(t, "kill", "bitcoind")
	f.pm.MustCLI(t, "wait", "bitcoind")
	r := f.pass()
	if got := actions(r); got != "bitcoind:start" || r.Apps[0].Health != "starting" {
		t.Fatalf("after the kill: %s, health %q", got, r.Apps[0].Health)
	}
}
