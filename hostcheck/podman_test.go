package hostcheck_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lockstep/lockstep/hostcheck"
	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/report"
)

const image = "localhost/lockstep-test/busybox:1"

// A private podman service with more containers.conf; lockstep's side reads the same file, as
// lockstepd does on a host where both run (CONTAINERS_CONF, as the service has it).
func startPodman(t *testing.T, more testenv.PodmanConf) *testenv.Podman {
	t.Helper()
	if testing.Short() {
		t.Skip("real podman: not in -short mode")
	}
	pm := testenv.StartPodmanConf(t, more)
	pm.ImportBusybox(t, image)
	t.Setenv("CONTAINERS_CONF", pm.Conf())
	return pm
}

// helperDir is a helper_binaries_dir holding only netavark: podman runs netavark networks but finds
// no aardvark-dns (nor catatonit there; podman also looks for catatonit in PATH).
func helperDir(t *testing.T) string {
	t.Helper()
	testenv.Need(t, "/usr/lib/podman/netavark")
	dir := t.TempDir()
	if err := os.Symlink("/usr/lib/podman/netavark", filepath.Join(dir, "netavark")); err != nil {
		t.Fatal(err)
	}
	return dir
}

type node struct {
	t      *testing.T
	pm     *testenv.Podman
	apps   string
	client *podman.Client
	check  *hostcheck.Checker
	rec    *reconciler.Reconciler
	prefix string
}

// newNode is a reconciler with a host checker on pm (through url: pm's, or a proxy's), as lockstepd
// wires them.
func newNode(t *testing.T, pm *testenv.Podman, url string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, pm: pm, apps: filepath.Join(dir, "apps.d"), client: podman.New(url), prefix: fmt.Sprintf("hc%d-", os.Getpid())}
	os.MkdirAll(n.apps, 0o755)
	n.check = hostcheck.NewChecker(n.client, hostcheck.Files{}, nil)
	n.client.NetworkSeen = n.check.SawNetwork
	rec, err := reconciler.New(reconciler.Config{AppsDir: n.apps, StateDir: filepath.Join(dir, "state"),
		Roots: manifest.Roots{DataRoot: filepath.Join(dir, "data")}, NetworkPrefix: n.prefix, Host: n.check}, n.client)
	if err != nil {
		t.Fatal(err)
	}
	n.rec = rec
	t.Cleanup(func() {
		pm.CLI("rm", "--all", "--force", "--time", "0")
		out, _ := pm.CLI("network", "ls", "--format", "{{.Name}}")
		for _, name := range strings.Fields(out) {
			if strings.HasPrefix(name, n.prefix) {
				pm.CLI("network", "rm", "--force", name)
			}
		}
	})
	return n
}

// stack is an app of two containers that find each other by name; lone is an app alone on its
// network.
func (n *node) stack(id string) {
	n.write(id, fmt.Sprintf("  containers:\n    - name: db\n      image: %[1]s\n      command: [sleep, '100000']\n      stop_grace_period: 1s\n    - name: api\n      image: %[1]s\n      command: [sleep, '100000']\n      stop_grace_period: 1s\n", image))
}

func (n *node) lone(id string) {
	n.write(id, fmt.Sprintf("  container:\n    image: %s\n    command: [sleep, '100000']\n    stop_grace_period: 1s\n", image))
}

func (n *node) write(id, body string) {
	y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: 1.0.0\n%s", id, id, body)
	if err := os.WriteFile(filepath.Join(n.apps, id+".yaml"), []byte(y), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) pass() *report.Report {
	n.t.Helper()
	r := n.rec.Pass(context.Background(), "test")
	for _, a := range r.Apps {
		if a.State != report.StateRunning {
			n.t.Fatalf("app %s is %s: %+v", a.ID, a.State, r.Failures)
		}
	}
	return r
}

func problem(r *report.Report, code string) *hostcheck.Problem {
	for i := range r.HostProblems {
		if r.HostProblems[i].Code == code {
			return &r.HostProblems[i]
		}
	}
	return nil
}

// failing: the apps with a failure naming the host problem.
func failing(r *report.Report) []string {
	var out []string
	for _, f := range r.Failures {
		if strings.HasPrefix(f.Error, "host: ") && !slices.Contains(out, f.App) {
			out = append(out, f.App)
		}
	}
	slices.Sort(out)
	return out
}

// podman 4.3.1 with network_backend = "cni" and no dnsname plugin (Debian's containernetworking-
// plugins has none): the stack is reported, the lone app is not, and the network podman made for the
// stack says dns_enabled false although lockstep asked for DNS.
func TestCNIWithoutDNSName(t *testing.T) {
	testenv.Need(t, "/usr/lib/cni/bridge")
	if _, err := os.Stat("/usr/lib/cni/dnsname"); err == nil {
		t.Skip("the dnsname plugin is installed here")
	}
	pm := startPodman(t, testenv.PodmanConf{Network: `network_backend = "cni"`})
	n := newNode(t, pm, pm.URL())
	n.stack("hc-stack")
	n.lone("hc-lone")
	r := n.pass()
	p := problem(r, hostcheck.CodeCNINoDNSName)
	if p == nil || !slices.Equal(p.Apps, []string{"hc-stack"}) || !strings.Contains(p.Fix, hostcheck.DebianDNSName) {
		t.Fatalf("problems %+v", r.HostProblems)
	}
	if got := failing(r); !slices.Equal(got, []string{"hc-stack"}) {
		t.Fatalf("apps failing on the host: %v (%+v)", got, r.Failures)
	}
	if dns := pm.MustCLI(t, "network", "inspect", "--format", "{{.DNSEnabled}}", n.prefix+"hc-stack"); dns != "false" {
		t.Fatalf("the CNI network has dns_enabled %s", dns)
	}
	// What the problem says: the stack's api cannot resolve its db.
	if out, err := pm.CLI("exec", "hc-stack-api", "timeout", "5", "nslookup", "db"); resolvedOrNotRun(out, err) {
		t.Fatalf("db resolved on a CNI network without dnsname (or nslookup did not run): %v\n%s", err, out)
	}
	if len(r.HostProblems) != 1 {
		t.Fatalf("problems %+v", r.HostProblems)
	}
}

// podman 4.3.1 with netavark and a helper_binaries_dir without aardvark-dns: 4.3 names no DNS helper
// in its info, so the probe looks where podman looks (containers.conf).
func TestNetavarkWithoutAardvark(t *testing.T) {
	pm := startPodman(t, testenv.PodmanConf{Engine: fmt.Sprintf("helper_binaries_dir = [%q]", helperDir(t))})
	n := newNode(t, pm, pm.URL())
	n.stack("hc-stack")
	n.lone("hc-lone")
	r := n.pass()
	p := problem(r, hostcheck.CodeNoAardvark)
	if p == nil || !slices.Equal(p.Apps, []string{"hc-stack"}) || !strings.Contains(p.Fix, "install aardvark-dns (Debian)") {
		t.Fatalf("problems %+v", r.HostProblems)
	}
	if got := failing(r); !slices.Equal(got, []string{"hc-stack"}) {
		t.Fatalf("apps failing on the host: %v (%+v)", got, r.Failures)
	}
	if backend := pm.MustCLI(t, "info", "--format", "{{.Host.NetworkBackend}}"); backend != "netavark" {
		t.Fatalf("podman's backend is %s", backend)
	}
	if out, err := pm.CLI("exec", "hc-stack-api", "timeout", "5", "nslookup", "db"); resolvedOrNotRun(out, err) {
		t.Fatalf("db resolved without aardvark-dns (or nslookup did not run): %v\n%s", err, out)
	}
}

// netavark with aardvark-dns (installed here): no DNS problem; a network someone made with DNS
// disabled is reported for the apps on it, found at the probe (an existing network) and after it
// (lockstep's network lookup at install). A no-op pass makes one request (the list), the probe none.
func TestNetworkWithoutDNS(t *testing.T) {
	testenv.Need(t, "/usr/lib/podman/aardvark-dns")
	pm := startPodman(t, testenv.PodmanConf{})
	proxy := testenv.StartCountingProxy(t, t.TempDir(), pm.Socket)
	n := newNode(t, pm, proxy.URL())
	pm.MustCLI(t, "network", "create", "--disable-dns", n.prefix+"hc-early")
	n.stack("hc-early")
	n.lone("hc-lone")
	r := n.pass()
	if p := problem(r, hostcheck.CodeNetworkNoDNS); p == nil || !slices.Equal(p.Apps, []string{"hc-early"}) || !strings.Contains(p.Message, n.prefix+"hc-early") {
		t.Fatalf("problems %+v", r.HostProblems)
	}
	if len(r.HostProblems) != 1 {
		t.Fatalf("problems %+v", r.HostProblems)
	}
	// What the problem says, and the control: names resolve on a network lockstep made, not on the
	// one made without DNS.
	n.stack("hc-ok")
	n.pass()
	if out, err := pm.CLI("exec", "hc-ok-api", "timeout", "5", "nslookup", "db"); err != nil {
		t.Fatalf("db does not resolve on a network lockstep made: %v\n%s", err, out)
	}
	if out, err := pm.CLI("exec", "hc-early-api", "timeout", "5", "nslookup", "db"); resolvedOrNotRun(out, err) {
		t.Fatalf("db resolved on a network without DNS (or nslookup did not run): %v\n%s", err, out)
	}
	// Made after the probe: seen when lockstep installs the app that uses it.
	pm.MustCLI(t, "network", "create", "--disable-dns", n.prefix+"hc-late")
	n.stack("hc-late")
	r = n.pass()
	if got := failing(r); !slices.Equal(got, []string{"hc-early", "hc-late"}) { // not hc-ok
		t.Fatalf("apps failing on the host: %v (%+v)", got, r.HostProblems)
	}
	if n.check.Probes() != 1 {
		t.Fatalf("%d probes in two passes", n.check.Probes())
	}
	proxy.Reset()
	r2 := n.pass()
	if len(r2.Actions) != 0 {
		t.Fatalf("not a no-op pass: %+v", r2.Actions)
	}
	if c := proxy.Count(); c != 1 {
		t.Fatalf("a no-op pass with the host check made %d podman API requests, want 1", c)
	}
	if d := cmp.Diff(r.HostProblems, r2.HostProblems); d != "" {
		t.Fatalf("two passes over the same host differ (-first +second):\n%s", d)
	}
	// The connection re-established: the next pass probes again (the list, /info, /networks/json).
	n.check.Invalidate()
	proxy.Reset()
	n.pass()
	if c, p := proxy.Count(), n.check.Probes(); c != 3 || p != 2 {
		t.Fatalf("after Invalidate: %d requests, %d probes; want 3 and 2", c, p)
	}
}

// What the probe reads from podman 4.3.1's API and this host's files, as they are here.
func TestProbeHere(t *testing.T) {
	pm := startPodman(t, testenv.PodmanConf{})
	f, err := hostcheck.Probe(context.Background(), podman.New(pm.URL()), hostcheck.Files{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("facts: %+v", f)
	if f.Version == "" || f.Rootless || f.NoDNS["podman"] != true {
		t.Fatalf("facts %+v: want a version, rootful, podman's default network without DNS", f)
	}
	if _, err := os.Stat("/usr/bin/catatonit"); err == nil && f.Catatonit == "" {
		t.Fatalf("catatonit is installed, the probe did not find it: %+v", f)
	}
}

// resolvedOrNotRun: nslookup answered (busybox prints Name: and Address: lines), or podman did not
// run it (podman's "Error: "). A failed lookup is anything else: NXDOMAIN from the host's resolvers,
// or, on a machine without any (the fresh hosts' deps root: only lo, no resolv.conf), "connection
// refused" from the gateway until timeout kills it.
func resolvedOrNotRun(out string, err error) bool {
	return err == nil || strings.Contains(out, "Name:") || strings.Contains(out, "Error: ")
}
