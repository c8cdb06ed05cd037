package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
)

// lockstepd on the shared podman 4.3.1, reading a containers.conf whose helper_binaries_dir holds
// only netavark, and with a PATH without catatonit: it finds no DNS helper for podman's netavark
// networks and no pause binary for podman kube play. lockstepctl status says so first, before the
// tables, with the fix and the apps affected: the stack (its members find each other by name), not
// the app alone on its network.
func TestStatusHeadlinesHostProblems(t *testing.T) {
	testenv.Need(t, "/usr/lib/podman/netavark")
	pm := realPodman(t)
	if backend := pm.MustCLI(t, "info", "--format", "{{.Host.NetworkBackend}}"); backend != "netavark" {
		t.Skipf("podman's network backend here is %s", backend)
	}
	// podman >= 4.4 names its DNS helper in /info, found with its own containers.conf, and lockstepd
	// believes it: hiding aardvark-dns from lockstepd's containers.conf alone, as below, is podman
	// 4.3's case (seen on Debian 13's podman 5.4.2 in test/hosts deps-trixie: no problem reported).
	if v := pm.MustCLI(t, "version", "--format", "{{.Client.Version}}"); !strings.HasPrefix(v, "4.3.") {
		t.Skipf("podman %s reports its DNS helper itself; this test is podman 4.3's", v)
	}
	dir := t.TempDir()
	helpers := filepath.Join(dir, "helpers")
	os.MkdirAll(helpers, 0o755)
	os.Symlink("/usr/lib/podman/netavark", filepath.Join(helpers, "netavark"))
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[engine]\nhelper_binaries_dir = [%q]\n", helpers)), 0o644); err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf("  containers:\n    - name: db\n      image: %[1]s\n      command: [sleep, '1000']\n      stop_grace_period: 1s\n    - name: api\n      image: %[1]s\n      command: [sleep, '1000']\n      stop_grace_period: 1s\n", image)
	t.Cleanup(func() {
		pm.CLI("rm", "-f", "-t", "0", "hp-stack-db", "hp-stack-api")
		pm.CLI("network", "rm", "-f", "lockstep-hp-stack")
	})
	e := startEnvWith(t, map[string]string{"hp-stack": stack, "hp-lone": sleeper("")}, nil,
		[]string{"CONTAINERS_CONF=" + conf, "PATH=" + helpers})
	code, out, errOut := e.ctl("status", "--color", "never")
	if code != exitDegraded {
		t.Fatalf("status: exit %d, want %d (degraded)\n%s%s", code, exitDegraded, out, errOut)
	}
	head, _, ok := strings.Cut(out, "\nApps:")
	if !ok {
		t.Fatalf("no Apps table:\n%s", out)
	}
	for _, want := range []string{
		"Host problem (netavark-no-aardvark): podman's network backend netavark has no aardvark-dns",
		"  fix: install aardvark-dns (Debian)",
		"  apps affected: hp-stack\n",
		"Host problem (kube-no-catatonit): podman finds no catatonit",
		"  fix: install catatonit (Debian)",
		"  apps affected: none now\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("the headline before the table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "hp-stack (host problem): host: podman's network backend netavark has no aardvark-dns") || strings.Contains(out, "hp-lone (host problem)") {
		t.Errorf("failures: want the stack's host failure, none for the lone app:\n%s", out)
	}
	// The same in the JSON report.
	code, js, _ := e.ctl("report", "--json")
	t.Logf("status:\n%s", out)
	if code != 0 || !strings.Contains(js, `"host_problems": [`) || !strings.Contains(js, `"code": "netavark-no-aardvark"`) ||
		!strings.Contains(js, `"class": "host",`) || !strings.Contains(js, `"subject": "app"`) {
		t.Errorf("report --json: exit %d\n%s", code, js)
	}
}
