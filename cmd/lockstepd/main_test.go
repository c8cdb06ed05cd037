package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

const image = "localhost/lockstep-test/busybox:1"

var shared = testenv.NewShared(func(t testenv.TB) any {
	p := testenv.StartPodman(t)
	p.ImportBusybox(t, image)
	return p
})

// TestMain lets the test binary double as lockstepd, so daemon tests exec the real main.
func TestMain(m *testing.M) {
	if os.Getenv("LOCKSTEPD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout))
	}
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

func realPodman(t *testing.T) *testenv.Podman {
	t.Helper()
	if testing.Short() {
		t.Skip("real podman: not in -short mode")
	}
	return shared.Get(t, "podman", "runc", "busybox").(*testenv.Podman)
}

func TestOnceAgainstRealPodman(t *testing.T) {
	pm := realPodman(t)
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	write := func(id, extra string) {
		y := fmt.Sprintf("app:\n  id: %s\n  name: %s\n  version: '1'\n  container:\n    image: %s\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n%s", id, id, image, extra)
		os.WriteFile(filepath.Join(apps, id+".yaml"), []byte(y), 0o644)
	}
	write("once-a", "")
	args := []string{"--once", "--podman-url", pm.URL(), "--apps-dir", apps, "--state-dir", filepath.Join(dir, "state"), "--log-level", "error"}

	var out bytes.Buffer
	if code := run(args, &out); code != 0 {
		t.Fatalf("exit %d, report %s", code, out.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if rep.PassID != 1 || rep.Trigger != "once" || len(rep.Actions) != 1 || rep.Actions[0].Action != "install" {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(out.String(), `"failures": []`) {
		t.Fatalf("failures not an empty list: %s", out.String())
	}
	// A bad manifest: the report names it, the exit status is 1, the good app is untouched.
	os.WriteFile(filepath.Join(apps, "once-b.yaml"), []byte("app:\n  id: once-b\n  nam: x\n"), 0o644)
	out.Reset()
	if code := run(args, &out); code != 1 {
		t.Fatalf("exit %d with a bad manifest, want 1", code)
	}
	rep = report.Report{}
	json.Unmarshal(out.Bytes(), &rep)
	if rep.PassID != 2 || len(rep.Actions) != 0 || len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].Error, `once-b.yaml: app.nam: unknown key (did you mean "name"?)`) {
		t.Fatalf("report %+v", rep)
	}
	// Typed: about the manifest file, of class invalid-manifest, for the app it is named after.
	if f := rep.Failures[0]; f.App != "once-b" || f.Subject != outcome.SubjectManifest || f.Class != outcome.ClassInvalidManifest ||
		f.Name != filepath.Join(apps, "once-b.yaml") || !strings.Contains(out.String(), `"class": "invalid-manifest"`) {
		t.Fatalf("failure %+v\n%s", f, out.String())
	}
	pm.MustCLI(t, "rm", "-f", "-t", "0", "once-a")
}

func TestFlags(t *testing.T) {
	if code := run([]string{"--no-such-flag"}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if code := run([]string{"--log-level", "loud"}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("bad log level: exit %d", code)
	}
	o, err := parseFlags([]string{"--state-dir", "/s"})
	if err != nil || o.dataRoot != "/s/apps" {
		t.Fatalf("data root default: %+v %v", o, err)
	}
	o, err = parseFlags([]string{"--allowed-registries", "docker.io, quay.io", "--allowed-registries", "ghcr.io", "--insecure-registries", "10.0.0.5:5000"})
	if err != nil || strings.Join(o.registries.Allowed, " ") != "docker.io quay.io ghcr.io" || strings.Join(o.registries.Insecure, " ") != "10.0.0.5:5000" {
		t.Fatalf("registries: %+v %v", o.registries, err)
	}
	if o, err := parseFlags(nil); err != nil || o.registries.Allowed != nil || o.registries.Insecure != nil {
		t.Fatalf("registries default: %+v %v", o.registries, err)
	}
	if _, err := parseFlags([]string{"--insecure-registries", "http://10.0.0.5:5000"}); err == nil || !strings.Contains(err.Error(), `--insecure-registries: "http://10.0.0.5:5000" is not a registry`) {
		t.Fatalf("bad registry: %v", err)
	}
	if code := run([]string{"--allowed-registries", "a b"}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("bad registry: exit %d", code)
	}
	// The operator's policy: a missing file grants nothing; an invalid one stops lockstepd, naming
	// the file and the field; a valid one reaches the reconciler's roots.
	dir := t.TempDir()
	if o, err := parseFlags([]string{"--policy", filepath.Join(dir, "none.yaml")}); err != nil || len(o.policy.Apps) != 0 {
		t.Fatalf("missing policy: %+v %v", o, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apps:\n  x: {host_netwrk: true}\n"), 0o644)
	if _, err := parseFlags([]string{"--policy", bad}); err == nil || !strings.HasPrefix(err.Error(), "--policy: "+bad+": -: line 2: field host_netwrk not found") {
		t.Fatalf("invalid policy: %v", err)
	}
	if code := run([]string{"--policy", bad}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("invalid policy: exit %d", code)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("apps:\n  x: {host_network: true}\n"), 0o644)
	if o, err := parseFlags([]string{"--policy", good}); err != nil || !o.policy.Apps["x"].HostNetwork || o.policy.File != good {
		t.Fatalf("policy: %+v %v", o, err)
	}
}

// TestOnceRegistryPolicy: --allowed-registries reaches the reconciler; a pull from another registry
// fails with the setting named, before any request to that registry.
func TestOnceRegistryPolicy(t *testing.T) {
	pm := realPodman(t)
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	os.MkdirAll(apps, 0o755)
	y := "app:\n  id: once-reg\n  name: r\n  version: '1'\n  container:\n    image: registry.invalid/x:1\n"
	os.WriteFile(filepath.Join(apps, "once-reg.yaml"), []byte(y), 0o644)
	var out bytes.Buffer
	code := run([]string{"--once", "--podman-url", pm.URL(), "--apps-dir", apps, "--state-dir", filepath.Join(dir, "state"),
		"--log-level", "error", "--allowed-registries", "docker.io,quay.io"}, &out)
	var rep report.Report
	json.Unmarshal(out.Bytes(), &rep)
	want := "pulling image registry.invalid/x:1: registry not allowed: image registry.invalid/x:1 is from registry registry.invalid, which lockstepd's --allowed-registries (docker.io,quay.io) does not list"
	if code != 1 || len(rep.Failures) != 1 || rep.Failures[0].Error != want {
		t.Fatalf("exit %d, failures %+v", code, rep.Failures)
	}
}
