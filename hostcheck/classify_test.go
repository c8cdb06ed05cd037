package hostcheck

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// uses: a stack (two containers on lockstep-mempool), a dependency with an exported host and its
// dependent (both on lockstep-node_exports), and a lone app on its own network.
var uses = []Use{
	{App: "mempool", Networks: []string{"lockstep-mempool"}},
	{App: "mempool", Networks: []string{"lockstep-mempool"}},
	{App: "node", Networks: []string{"lockstep-node", "lockstep-node_exports"}},
	{App: "lnd", Networks: []string{"lockstep-lnd", "lockstep-node_exports"}},
	{App: "lone", Networks: []string{"lockstep-lone"}},
}

var healthy = Facts{Backend: "netavark", DNS: true, Catatonit: "/usr/libexec/podman/catatonit", NoDNS: map[string]bool{"podman": true}}

func codes(ps []Problem) map[string][]string {
	out := map[string][]string{}
	for _, p := range ps {
		out[p.Code] = p.Apps
	}
	return out
}

func TestClassify(t *testing.T) {
	with := func(change func(*Facts)) Facts {
		f := healthy
		f.NoDNS = map[string]bool{"podman": true}
		change(&f)
		return f
	}
	dnsApps := []string{"lnd", "mempool", "node"} // not lone: alone on its network
	all := []string{"lnd", "lone", "mempool", "node"}
	for _, c := range []struct {
		name  string
		facts Facts
		want  map[string][]string
	}{
		{"healthy (podman's default network has no DNS, and no app is on it)", healthy, map[string][]string{}},
		{"CNI without dnsname", with(func(f *Facts) { f.Backend, f.DNS = "cni", false }), map[string][]string{CodeCNINoDNSName: dnsApps}},
		{"CNI without dnsname: its networks' dns_enabled false is not said twice", with(func(f *Facts) {
			f.Backend, f.DNS = "cni", false
			f.NoDNS["lockstep-mempool"] = true
		}), map[string][]string{CodeCNINoDNSName: dnsApps}},
		{"CNI with dnsname", with(func(f *Facts) { f.Backend = "cni" }), map[string][]string{}},
		{"netavark without aardvark-dns", with(func(f *Facts) { f.DNS = false }), map[string][]string{CodeNoAardvark: dnsApps}},
		{"a network made without DNS", with(func(f *Facts) { f.NoDNS["lockstep-node_exports"] = true }), map[string][]string{CodeNetworkNoDNS: {"lnd", "node"}}},
		{"a lone app's network without DNS affects nothing", with(func(f *Facts) { f.NoDNS["lockstep-lone"] = true }), map[string][]string{CodeNetworkNoDNS: {}}},
		{"an unused network without DNS is not reported", with(func(f *Facts) { f.NoDNS["lockstep-gone"] = true }), map[string][]string{}},
		{"rootless without newuidmap", with(func(f *Facts) { f.Rootless, f.UIDs = true, 1 }), map[string][]string{CodeNoNewUIDMap: all}},
		{"rootless without subordinate ids", with(func(f *Facts) { f.Rootless, f.NewUIDMap, f.UIDs = true, "/usr/bin/newuidmap", 1 }), map[string][]string{CodeNoSubIDs: all}},
		{"rootless, mapped", with(func(f *Facts) { f.Rootless, f.NewUIDMap, f.UIDs = true, "/usr/bin/newuidmap", 65537 }), map[string][]string{}},
		{"no catatonit", with(func(f *Facts) { f.Catatonit = "" }), map[string][]string{CodeNoCatatonit: {}}},
		{"unknown backend", with(func(f *Facts) { f.Backend, f.DNS = "", false }), map[string][]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Classify(c.facts, uses)
			if d := cmp.Diff(c.want, codes(got)); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
			for _, p := range got {
				if p.Message == "" || p.Fix == "" || p.Apps == nil {
					t.Fatalf("incomplete problem %+v", p)
				}
			}
		})
	}
}

// Each fix names the Debian package that provides what is missing.
func TestFixesNamePackages(t *testing.T) {
	for code, pkg := range map[string]string{CodeCNINoDNSName: DebianDNSName, CodeNoAardvark: DebianAardvark, CodeNoNewUIDMap: DebianUIDMap, CodeNoCatatonit: DebianCatatonit} {
		f := healthy
		switch code {
		case CodeCNINoDNSName:
			f.Backend, f.DNS = "cni", false
		case CodeNoAardvark:
			f.DNS = false
		case CodeNoNewUIDMap:
			f.Rootless = true
		case CodeNoCatatonit:
			f.Catatonit = ""
		}
		ps := Classify(f, uses)
		if len(ps) != 1 || ps[0].Code != code || !strings.Contains(ps[0].Fix, "install "+pkg+" (Debian)") {
			t.Errorf("%s: %+v", code, ps)
		}
	}
}
