package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	code, out, _ := runCtl("validate", "../../catalog/demo")
	if code != 0 || out != "" {
		t.Fatalf("demo catalog: exit %d, %q", code, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("app:\n  id: x\n  name: x\n  version: '1'\n  container:\n    image: 'a:1'\n    ports: ['70000:80']\n    volumes: ['rel:/data']\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "y.yaml"), []byte("app:\n  id: y\n  nme: y\n"), 0o644)
	code, out, _ = runCtl("validate", filepath.Join(dir, "x.yaml"), dir)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	x := filepath.Join(dir, "x.yaml")
	want := []string{
		x + `: app.container.ports[0]: "70000:80": host port "70000" is not a number from 1 to 65535`,
		x + `: app.container.volumes[0]: "rel:/data": source "rel" is not an absolute path`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(out, filepath.Join(dir, "y.yaml")+`: app.nme: unknown key (did you mean "name"?)`) {
		t.Errorf("y.yaml problem missing:\n%s", out)
	}
	for _, l := range lines {
		if len(strings.SplitN(l, ": ", 3)) != 3 {
			t.Errorf("line %q is not FILE: FIELD: REASON", l)
		}
	}
	if code, _, _ := runCtl("validate", filepath.Join(dir, "none.yaml")); code != 1 {
		t.Fatal("missing file accepted")
	}
}

// Wiring errors between apps: an unknown provider, a cycle through a provided capability, a reference
// to an export nobody exports, clashing host ports and podman names; each names file, field and reason.
// A restart policy validates, and validate says that lockstep carries it out (issue 16 point 4).
func TestValidateSaysWhoRestarts(t *testing.T) {
	f := filepath.Join(t.TempDir(), "lnd.yaml")
	os.WriteFile(f, []byte("app:\n  id: lnd\n  name: lnd\n  version: '1'\n  container:\n    image: 'a:1'\n    restart: on-failure\n"), 0o644)
	code, out, errOut := runCtl("validate", f)
	if code != 0 || out != "" || !strings.Contains(errOut, "note: "+f+": app.container.restart: on-failure is carried out by lockstep: an exited container is started again") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
}

func TestValidateExplainsWiringErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(id, body string) {
		y := "app:\n  id: " + id + "\n  name: " + id + "\n  version: '1'\n" + body
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lnd", "  requires: {apps: [bitcoin]}\n  container:\n    image: 'x:1'\n    env: {RPC: '${bitcoin.rpc_host}', PW: '${bitcoin.rpc_pass}'}\n    ports: ['8080:8080']\n")
	write("knots", "  provides: [bitcoin]\n  requires: {apps: [lnd]}\n  exports: {rpc_host: {host: knots}}\n  container: {image: 'x:1'}\n")
	write("web", "  requires: {apps: [chain]}\n  container: {image: 'x:1', ports: ['8080:80']}\n")
	write("shop", "  containers:\n    - {name: ui, image: 'x:1'}\n")
	write("shop-ui", "  container: {image: 'x:1'}\n")
	code, out, _ := runCtl("validate", dir)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	f := func(id string) string { return filepath.Join(dir, id+".yaml") }
	for _, w := range []string{
		f("lnd") + `: app.container.env.PW: ${bitcoin.rpc_pass}: app knots (which provides bitcoin) exports no rpc_pass (it exports: rpc_host)`,
		f("lnd") + `: app.requires.apps: dependency cycle: `,
		f("knots") + `: app.requires.apps: dependency cycle: `,
		f("web") + `: app.requires.apps[0]: requires app "chain", which is not installed and which no installed app provides`,
		f("web") + `: app.container.ports[0]: host port 8080/tcp is also published by app lnd (` + f("lnd") + `: app.container.ports[0])`,
		`: podman name "shop-ui" is already used by app `,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	// The same files given one by one on the command line are checked as one set too.
	code, out2, _ := runCtl("validate", f("lnd"), f("knots"), f("web"), f("shop"), f("shop-ui"))
	if code != 1 || out2 != out {
		t.Fatalf("files as a set: exit %d\n%s\nwant\n%s", code, out2, out)
	}
}

// TestValidatePolicyVerdict (issue 18): validate holds manifests to --policy as lockstepd does, says
// the verdict, and a grant in the policy file makes the same manifest valid.
func TestValidatePolicyVerdict(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "vpn.yaml")
	os.WriteFile(app, []byte("app:\n  id: vpn\n  name: VPN\n  version: '1'\n  container:\n    image: 'localhost/vpn:1'\n    capabilities: {add: [NET_ADMIN]}\n"), 0o644)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("# nothing granted\n"), 0o644)
	code, out, errOut := runCtl("validate", "--policy", pol, app)
	want := app + ": app.container.capabilities.add[0]: adding capability CAP_NET_ADMIN is not granted to app vpn (to allow it: apps.vpn.capabilities in " + pol + ")\n"
	if code != 1 || out != want || !strings.Contains(errOut, "1 problem(s); policy "+pol+": 1 refusal(s)") {
		t.Fatalf("exit %d\n%s%s\nwant %s", code, out, errOut, want)
	}
	os.WriteFile(pol, []byte("apps:\n  vpn: {capabilities: [NET_ADMIN]}\n"), 0o644)
	if code, out, errOut := runCtl("validate", "--policy", pol, app); code != 0 || out != "" || !strings.Contains(errOut, "1 manifest(s) valid; policy "+pol+": nothing refused") {
		t.Fatalf("with the grant: exit %d %q %q", code, out, errOut)
	}
	os.WriteFile(pol, []byte("apps:\n  vpn: {capabilities: [NET_ADMN]}\n  bad id: {}\n"), 0o644)
	if code, out, _ := runCtl("validate", "--policy", pol, app); code != 1 || !strings.Contains(out, pol+": apps.bad id:") {
		t.Fatalf("an invalid policy: exit %d %q", code, out)
	}
}
