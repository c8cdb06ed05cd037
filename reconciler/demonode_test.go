package reconciler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

// demoNode are the demo catalog's node apps and the containers lockstep makes of them.
var demoNode = map[string][]string{
	"bitcoin-knots": {"bitcoin-knots"},
	"lnd":           {"lnd"},
	"electrs":       {"electrs"},
	"mempool":       {"mempool-db", "mempool-api", "mempool-web"},
	"lnd-ui":        {"lnd-ui"},
}

// syncBuffer is a log sink the reconciler's goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// copyDemoNode copies the demo catalog's node apps (and their templates) into dir, with the test's
// busybox image and free host ports, and returns the host port that replaced each catalog port.
func copyDemoNode(t *testing.T, dir string) map[string]int {
	t.Helper()
	src := "../catalog/demo"
	mkdirAll(t, filepath.Join(dir, "node"))
	tmpls, err := filepath.Glob(filepath.Join(src, "node", "*"))
	if err != nil || len(tmpls) == 0 {
		t.Fatalf("no templates in %s/node (%v)", src, err)
	}
	for _, p := range tmpls {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "node", filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string]int{}
	hostPort := regexp.MustCompile(`"127\.0\.0\.1:(\d+):`)
	for id := range demoNode {
		b, err := os.ReadFile(filepath.Join(src, id+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		y := strings.ReplaceAll(string(b), "localhost/lockstep/busybox:demo", bbImage)
		y = hostPort.ReplaceAllStringFunc(y, func(m string) string {
			orig := hostPort.FindStringSubmatch(m)[1]
			p := freePort(t)
			ports[orig] = p
			return fmt.Sprintf(`"127.0.0.1:%d:`, p)
		})
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ports
}

// created returns when podman created each container.
func (f *fixture) created(names ...string) map[string]time.Time {
	f.t.Helper()
	out := map[string]time.Time{}
	for _, n := range names {
		s := f.pm.MustCLI(f.t, "inspect", "--format", "{{.Created.Format \"2006-01-02T15:04:05.999999999Z07:00\"}}", n)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f.t.Fatalf("created time of %s: %q: %v", n, s, err)
		}
		out[n] = tm
	}
	return out
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 8 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// eventually polls get until ok accepts its answer, failing the test after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, get func() (string, error), ok func(string) bool) string {
	t.Helper()
	var last string
	var lastErr error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		last, lastErr = get()
		if lastErr == nil && ok(last) {
			return last
		}
	}
	t.Fatalf("%s: no good answer within %s: last %q, %v", what, timeout, last, lastErr)
	return ""
}

// TestDemoNode installs the demo catalog's node (bitcoin-knots, lnd, electrs, the mempool stack and
// lnd-ui) on real podman and checks that it works as a node: in dependency order, every published
// port answering, dependents using their dependencies' exported values, secrets only where they
// belong, the read-only mount read-only, stack members reaching each other by name, and a pass after
// it all that does nothing.
func TestDemoNode(t *testing.T) {
	f := newFixture(t)
	catalog := filepath.Join(f.dir, "catalog")
	ports := copyDemoNode(t, catalog)
	var all []string
	for id, names := range demoNode {
		if err := os.Symlink(filepath.Join(catalog, id+".yaml"), filepath.Join(f.apps, id+".yaml")); err != nil {
			t.Fatal(err)
		}
		all = append(all, names...)
	}
	sort.Strings(all)
	f.names = append(f.names, all...)
	t.Cleanup(func() {
		for id := range demoNode {
			f.pm.CLI("network", "rm", "--force", f.netPrefix()+id)
		}
	})

	logs := &syncBuffer{}
	logger := logrus.New()
	logger.Out, logger.Level = logs, logrus.DebugLevel
	rec, err := reconciler.New(reconciler.Config{AppsDir: f.apps, StateDir: filepath.Join(f.dir, "state"), Roots: rootsOf(f), Log: logger, NetworkPrefix: f.netPrefix()}, f.client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); rec.RunHealthChecks(ctx, f.client, func(string, string) {}) }()
	defer func() { cancel(); <-healthDone }()

	// Passes until every container runs: dependents wait for their dependencies' health checks, so
	// the node comes up over several passes, as under lockstepd.
	var reports []string
	save := func(r *report.Report) *report.Report {
		b, _ := json.Marshal(r)
		reports = append(reports, string(b))
		return r
	}
	running := func(r *report.Report) bool {
		if len(r.Apps) != len(demoNode) {
			return false
		}
		for _, a := range r.Apps {
			if a.State != "running" {
				return false
			}
		}
		return true
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range all {
				out, _ := f.pm.CLI("logs", n)
				t.Logf("podman logs %s:\n%s", n, out)
			}
		}
	})
	var r *report.Report
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		r = save(rec.Pass(ctx, "test"))
		for _, fl := range r.Failures {
			// Waiting for a dependency's health is expected on the way up; nothing else is.
			if !strings.Contains(fl.Error, "waiting for") {
				t.Fatalf("failure on the way up: %+v\nreport: %s", fl, reports[len(reports)-1])
			}
		}
		if running(r) && len(r.Failures) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not come up: %+v %+v", r.Apps, r.Failures)
		}
	}
	if len(reports) < 3 {
		t.Errorf("the node came up in %d passes: dependents did not wait for their dependencies' health", len(reports))
	}

	// Install order: providers before consumers, a stack's containers in their order.
	c := f.created(all...)
	for _, o := range [][2]string{
		{"bitcoin-knots", "lnd"}, {"bitcoin-knots", "electrs"}, {"bitcoin-knots", "mempool-db"},
		{"mempool-db", "mempool-api"}, {"mempool-api", "mempool-web"}, {"lnd", "lnd-ui"},
	} {
		if !c[o[0]].Before(c[o[1]]) {
			t.Errorf("%s (created %s) was not created before %s (%s)", o[0], c[o[0]], o[1], c[o[1]])
		}
	}

	// The secrets lockstep generated, and where they must be (and nowhere else).
	readSecret := func(app, name string) string {
		b, err := os.ReadFile(filepath.Join(f.dir, "state", "secrets", app, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	rpcPass, dbPass := readSecret("bitcoin-knots", "rpc_password"), readSecret("mempool", "db_password")
	if len(rpcPass) != 64 || len(dbPass) != 64 || rpcPass == dbPass {
		t.Fatalf("secrets %d and %d characters long", len(rpcPass), len(dbPass))
	}
	confFile := func(path string, want ...string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		for _, w := range want {
			if !strings.Contains(string(b), w+"\n") {
				t.Errorf("%s lacks %q:\n%s", path, w, b)
			}
		}
	}
	confFile(filepath.Join(f.data, "bitcoin-knots", "bitcoin.conf"), "rpcuser=lockstep", "rpcpassword="+rpcPass, "rpcport=8332")
	confFile(filepath.Join(f.data, "lnd", "lnd.conf"), "bitcoind.rpchost=bitcoin-knots:8332", "bitcoind.rpcuser=lockstep", "bitcoind.rpcpass="+rpcPass)

	url := func(catalogPort string) string {
		p, ok := ports[catalogPort]
		if !ok {
			t.Fatalf("the catalog publishes no host port %s", catalogPort)
		}
		return fmt.Sprintf("http://127.0.0.1:%d/", p)
	}
	var pages []string
	page := func(what, u string, ok func(string) bool) string {
		t.Helper()
		body := eventually(t, what, 60*time.Second, func() (string, error) {
			code, body, err := httpGet(u)
			if err == nil && code != 200 {
				err = fmt.Errorf("HTTP %d", code)
			}
			return body, err
		}, ok)
		pages = append(pages, body)
		return body
	}
	has := func(subs ...string) func(string) bool {
		return func(s string) bool {
			for _, sub := range subs {
				if !strings.Contains(s, sub) {
					return false
				}
			}
			return true
		}
	}

	// bitcoind: RPC answers only with the generated credentials.
	if code, _, err := httpGet(url("18332")); err != nil || code != 401 {
		t.Errorf("bitcoin RPC without credentials: HTTP %d, %v (want 401)", code, err)
	}
	rpcURL := strings.Replace(url("18332"), "http://", "http://lockstep:"+rpcPass+"@", 1)
	resp, err := http.Post(rpcURL, "application/json", strings.NewReader(`{"jsonrpc":"1.0","id":"t","method":"getblockchaininfo","params":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"chain":"regtest"`) {
		t.Errorf("bitcoin RPC with credentials: HTTP %d %s", resp.StatusCode, b)
	}

	// lnd: REST and gRPC ports answer; getinfo shows the bitcoind it was configured with and reached.
	getinfo := page("lnd getinfo", url("18380"), has(`"state":"active"`, `"synced_to_chain":true`, `"rpchost":"bitcoin-knots:8332"`, `"rpcuser":"lockstep"`))
	t.Logf("lnd: %s", getinfo)
	page("lnd gRPC port", url("18309"), func(string) bool { return true })
	for _, name := range []string{"public/tls.cert", "public/admin.macaroon", "tls.key"} {
		if fi, err := os.Stat(filepath.Join(f.data, "lnd", name)); err != nil || fi.Size() == 0 {
			t.Errorf("lnd did not write %s: %v", name, err)
		}
	}

	// electrs: Electrum JSON-RPC on its port, indexing from bitcoind with the credentials in its env.
	electrum := eventually(t, "electrs", 60*time.Second, func() (string, error) {
		conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url("18301"), "http://"), "/"), 3*time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(conn, `{"id":7,"method":"blockchain.headers.subscribe","params":[]}`)
		return bufio.NewReader(conn).ReadString('\n')
	}, regexp.MustCompile(`"height":\d+.*"id":7`).MatchString)
	pages = append(pages, electrum)
	if d, _ := os.ReadFile(filepath.Join(f.data, "electrs", "db", "daemon")); strings.TrimSpace(string(d)) != "bitcoin-knots:8332" {
		t.Errorf("electrs indexes from %q", d)
	}

	// mempool: web, published, shows what api reached: bitcoind, electrs and its db by name.
	mp := page("mempool web", url("18350"), has(`"backend":"electrum"`, `"core_rpc":{"host":"bitcoin-knots","port":"8332","user":"lockstep","status":"ok"`,
		`"electrum":{"host":"electrs","port":"50001","height":`, `"database":{"host":"db","address":"`, `"status":"ok"}}`))
	t.Logf("mempool: %s", mp)
	if m := regexp.MustCompile(`"database":\{"host":"db","address":"([0-9.]+)"`).FindStringSubmatch(mp); m == nil {
		t.Errorf("mempool api did not resolve db to an address: %s", mp)
	} else if ip := f.pm.MustCLI(t, "inspect", "--format", `{{(index .NetworkSettings.Networks "`+f.netPrefix()+`mempool").IPAddress}}`, "mempool-db"); ip != m[1] {
		t.Errorf("db resolved to %s, mempool-db is %s on mempool's network", m[1], ip)
	}

	// lnd-ui: uses lnd's certificate and macaroon through a read-only mount and reaches lnd by name.
	ui := page("lnd-ui", url("18370"), has("admin.macaroon present", "mounted read-only: yes", `"rpchost":"bitcoin-knots:8332"`))
	t.Logf("lnd-ui: %s", ui)
	// As root inside the container, so that only the mount can refuse.
	if out, err := f.pm.CLI("exec", "--user", "0", "lnd-ui", "touch", "/lnd/written-by-ui"); err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("lnd-ui writing into lnd's data: %s, %v (want a read-only file system)", out, err)
	}
	if _, err := os.Stat(filepath.Join(f.data, "lnd", "public", "written-by-ui")); err == nil {
		t.Error("a file lnd-ui wrote is in lnd's data dir")
	}
	if out, err := f.pm.CLI("exec", "lnd-ui", "cat", "/lnd/tls.cert"); err != nil || !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Errorf("lnd-ui cannot read lnd's tls.cert: %s %v", out, err)
	}

	// The UI runs as 1000:1000 in a state dir its ownership hooks gave that user, where it keeps the
	// page its companion serves.
	eventually(t, "lnd-ui status page", 30*time.Second, func() (string, error) {
		b, err := os.ReadFile(filepath.Join(f.data, "lnd-ui", "state", "www", "index.html"))
		return string(b), err
	}, has("admin.macaroon present"))
	for _, p := range []string{"state", "state/www", "state/www/index.html"} {
		fi, err := os.Stat(filepath.Join(f.data, "lnd-ui", p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("lnd-ui's %s is owned by %d:%d, want 1000:1000", p, st.Uid, st.Gid)
		}
	}

	// A pass over the running node does nothing.
	noop := save(rec.Pass(ctx, "test"))
	if len(noop.Actions) != 0 || len(noop.Failures) != 0 || !running(noop) {
		t.Errorf("second pass over the node: actions %+v failures %+v apps %+v", noop.Actions, noop.Failures, noop.Apps)
	}

	// The secrets appear in no report, no log line and no served page or container log.
	saved, _ := os.ReadFile(filepath.Join(f.dir, "state", "report.json"))
	reports = append(reports, string(saved))
	var ctrLogs []string
	for _, n := range all {
		out, _ := f.pm.CLI("logs", n)
		ctrLogs = append(ctrLogs, out)
	}
	if !strings.Contains(logs.String(), "pre-start hook changed") {
		t.Errorf("the log output captured nothing (want the hooks' lines): %q", logs.String())
	}
	for what, texts := range map[string][]string{"report": reports, "lockstep log": {logs.String()}, "served page": pages, "container log": ctrLogs} {
		for _, s := range texts {
			for name, secret := range map[string]string{"bitcoin rpc_password": rpcPass, "mempool db_password": dbPass} {
				if strings.Contains(s, secret) {
					t.Errorf("%s appears in a %s: %s", name, what, s)
				}
			}
		}
	}
}
