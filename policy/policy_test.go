package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedPolicyGrantsNothing: the conffile the package ships parses and grants nothing: deny by
// default on a fresh install.
func TestShippedPolicyGrantsNothing(t *testing.T) {
	p, err := Load("../packaging/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest() != (&Policy{File: "../packaging/policy.yaml"}).Digest() {
		t.Fatalf("the shipped policy grants something: %+v", p)
	}
}

// TestDemoPolicy: the demo catalog's policy parses (its grants are explained in its comments).
func TestDemoPolicy(t *testing.T) {
	if _, err := Load("../catalog/demo/node/policy.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	p, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err != nil || len(p.Apps) != 0 || p.AllApps.HostNetwork {
		t.Fatalf("%+v %v", p, err)
	}
	var nilp *Policy
	if rs := nilp.Check(Entry{App: "a", Field: "app.container", Network: "host"}); len(rs) != 1 {
		t.Fatalf("a nil policy granted the host network: %v", rs)
	}
}

// TestParseStrict: unknown keys, bad ids, capabilities, networks and roots are FILE: FIELD: REASON.
func TestParseStrict(t *testing.T) {
	for in, want := range map[string]string{
		"apps:\n  x: {host_netwrk: true}\n":        "p.yaml: -: line 2: field host_netwrk not found",
		"apps:\n  X_1: {}\n":                       `p.yaml: apps.X_1: "X_1" is not an app id`,
		"all_apps: {capabilities: [sys admin]}\n":  `p.yaml: all_apps.capabilities[0]: "sys admin" is not a capability name`,
		"apps:\n  a: {volume_roots: [srv]}\n":      `p.yaml: apps.a.volume_roots[0]: "srv" is not an absolute path without ..`,
		"apps:\n  a: {relabel_roots: [/a/../b]}\n": `p.yaml: apps.a.relabel_roots[0]: "/a/../b" is not an absolute path without ..`,
		"apps:\n  a: {networks: [\"bad net\"]}\n":  `p.yaml: apps.a.networks[0]: "bad net" is not a network name`,
		"apps: [a]\n": "p.yaml: -: line 1: cannot unmarshal",
		"\x00":        "p.yaml: -: file contains NUL bytes",
	} {
		_, err := Parse("p.yaml", []byte(in))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
	f := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(f, make([]byte, maxFileSize+1), 0o644)
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized: %v", err)
	}
}

// TestDefaultCapabilitiesNeedNoGrant: adding back one of podman's defaults after drop ALL is no
// escalation; anything else is refused, ALL included.
func TestDefaultCapabilitiesNeedNoGrant(t *testing.T) {
	rs := (&Policy{}).Check(Entry{App: "a", Field: "app.container", CapAdd: []string{"NET_BIND_SERVICE", "CAP_CHOWN", "NET_RAW", "ALL"}})
	if len(rs) != 2 || rs[0].Field != "app.container.capabilities.add[2]" || rs[1].Field != "app.container.capabilities.add[3]" {
		t.Fatalf("%v", rs)
	}
}

// TestVolumeRootsAreDirectories: a granted root covers what is under it, not a sibling that shares
// its prefix; the data dir of another app is not the app's own.
func TestVolumeRootsAreDirectories(t *testing.T) {
	p := &Policy{Apps: map[string]Grants{"a": {VolumeRoots: []string{"/mnt/chain"}}}}
	e := Entry{App: "a", Field: "app.container", DataDir: "/var/lib/lockstep/apps/a"}
	for src, ok := range map[string]bool{
		"/mnt/chain": true, "/mnt/chain/x": true, "/mnt/chainsaw": false, "/var/lib/lockstep/apps/a/x": true,
		"/var/lib/lockstep/apps/ab": false, "/var/lib/lockstep/apps": false, "/": false,
	} {
		e.Volumes = []Volume{{Field: "app.container.volumes[0]", Source: src}}
		if got := len(p.Check(e)) == 0; got != ok {
			t.Errorf("%s: allowed %v, want %v", src, got, ok)
		}
	}
}

// FuzzPolicyParse: any bytes given as a policy parse or fail without a panic; an error names the file
// and a field on each line; a policy that parses checks any entry without a panic, and every refusal
// names the key of apps.ID that would allow it.
func FuzzPolicyParse(f *testing.F) {
	if b, err := os.ReadFile("../packaging/policy.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apps:\n  a: {capabilities: [NET_ADMIN], host_network: true, volume_roots: [/mnt], relabel_roots: [/mnt], networks: [n]}\n"))
	f.Add([]byte("all_apps: {root_user: true}\napps: {b: {}}\n"))
	f.Add([]byte("apps: [x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("/etc/lockstep/policy.yaml", data)
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "/etc/lockstep/policy.yaml: ") || len(strings.SplitN(l, ": ", 3)) != 3 {
					t.Fatalf("error line %q is not FILE: FIELD: REASON", l)
				}
			}
			return
		}
		e := Entry{App: "a", Field: "app.container", DataDir: "/d/a", CapAdd: []string{"SYS_ADMIN", "ALL"}, Network: "host", User: "0",
			Volumes: []Volume{{Field: "app.container.volumes[0]", Source: "/mnt/x", Options: []string{"U"}}}}
		for _, r := range p.Check(e) {
			if !strings.Contains(r.Reason, "to allow it: apps.a.") || !strings.HasPrefix(r.Field, "app.container.") {
				t.Fatalf("refusal %+v", r)
			}
		}
	})
}
