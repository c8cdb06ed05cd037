package hostcheck

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lockstep/lockstep/report"
	"github.com/lockstep/lockstep/spec"
)

// Problem is one thing the host's podman cannot do that installed apps (or lockstep's exports) need:
// the report's row.
type Problem = report.HostProblem

// Problem codes.
const (
	CodeCNINoDNSName     = "cni-no-dnsname"        // CNI networks without the dnsname plugin
	CodeNoAardvark       = "netavark-no-aardvark"  // netavark without aardvark-dns
	CodeNetworkNoDNS     = "network-dns-disabled"  // one network made with dns_enabled false
	CodeNoNewUIDMap      = "rootless-no-newuidmap" // rootless podman without newuidmap/newgidmap
	CodeNoSubIDs         = "rootless-no-subids"    // rootless podman with one uid only
	CodeNoCatatonit      = "kube-no-catatonit"     // no pause binary for podman kube play
	DebianDNSName        = "golang-github-containernetworking-plugin-dnsname"
	DebianAardvark       = "aardvark-dns"
	DebianUIDMap         = "uidmap"
	DebianCatatonit      = "catatonit"
	backendNetavark      = "netavark"
	backendCNI           = "cni"
	minUIDsForImages     = 2 // fewer mapped uids than this: only root-owned image files unpack
	fixRemoveNetworkNote = "networks made before it keep no DNS: remove lockstep's (podman network rm -f NAME; their containers go too, data stays) and lockstep makes them again"
)

// Facts are what a probe found about the host's podman.
type Facts struct {
	// Version is podman's version (GET /info); "" when unknown.
	Version string `json:"version"`
	// Backend is podman's network backend: netavark, cni, or "" when unknown.
	Backend string `json:"backend"`
	// DNS tells whether the backend resolves container names on networks with dns_enabled:
	// aardvark-dns for netavark, the dnsname plugin for CNI. DNSWhere says how that was found.
	DNS      bool   `json:"dns"`
	DNSWhere string `json:"dns_where"`
	// NoDNS are the networks that exist with dns_enabled false.
	NoDNS map[string]bool `json:"no_dns"`
	// Rootless podman; then NewUIDMap is newuidmap's (and newgidmap's) path, "" when missing, and
	// UIDs the number of uids podman maps.
	Rootless  bool   `json:"rootless"`
	NewUIDMap string `json:"newuidmap"`
	UIDs      int64  `json:"uids"`
	// Catatonit is the path of podman's pause binary, "" when podman would not find it.
	Catatonit string `json:"catatonit"`
	// Down is why podman did not answer, when these facts are lockstepd's own (its user and PATH):
	// rootless podman without newuidmap for a user with subordinate ids does not start at all.
	Down string `json:"down,omitempty"`
}

// Use is one container of an installed app and the networks lockstep manages that it is on.
type Use struct {
	App      string
	Networks []string
}

// Uses are the desired containers' uses of lockstep's networks (those whose name starts with prefix).
func Uses(desired []*spec.Desired, prefix string) []Use {
	uses := make([]Use, 0, len(desired))
	for _, d := range desired {
		u := Use{App: d.App.ID}
		for _, n := range append([]string{d.Request.Network}, d.Request.Networks...) {
			if strings.HasPrefix(n, prefix) {
				u.Networks = append(u.Networks, n)
			}
		}
		uses = append(uses, u)
	}
	return uses
}

// Classify turns facts into problems, each with the apps it affects. Names resolve on a network
// only for the containers on it, so a network matters when two or more containers share it (a
// stack's members, a dependency's exported host and its dependents); an app alone on its network
// needs no DNS. Rootless podman without id mapping affects every app. catatonit affects no app:
// only `podman kube play` of `lockstepctl export --format kube` output needs it.
func Classify(f Facts, uses []Use) []Problem {
	byNet := map[string][]string{} // network -> app of each container on it
	all := map[string]bool{}
	for _, u := range uses {
		all[u.App] = true
		for _, n := range u.Networks {
			byNet[n] = append(byNet[n], u.App)
		}
	}
	needDNS := func(only string) []string {
		apps := map[string]bool{}
		for n, on := range byNet {
			if len(on) >= 2 && (only == "" || n == only) {
				for _, a := range on {
					apps[a] = true
				}
			}
		}
		return sorted(apps)
	}
	var out []Problem
	backendDNS := true
	switch {
	case f.Backend == backendCNI && !f.DNS:
		backendDNS = false
		out = append(out, Problem{Code: CodeCNINoDNSName, Apps: needDNS(""),
			Message: "podman's networks are CNI networks without the dnsname plugin (" + f.DNSWhere + "): containers that reach each other by name (stacks, exports by host) get NXDOMAIN",
			Fix:     "install " + DebianDNSName + " (Debian), or netavark and " + DebianAardvark + " with network_backend = \"netavark\" in containers.conf; " + fixRemoveNetworkNote})
	case f.Backend == backendNetavark && !f.DNS:
		backendDNS = false
		out = append(out, Problem{Code: CodeNoAardvark, Apps: needDNS(""),
			Message: "podman's network backend netavark has no aardvark-dns (" + f.DNSWhere + "): containers that reach each other by name (stacks, exports by host) get NXDOMAIN",
			Fix:     "install " + DebianAardvark + " (Debian); the containers on lockstep's networks resolve names once restarted"})
	}
	if backendDNS {
		var nets []string
		for n := range f.NoDNS {
			if _, used := byNet[n]; used {
				nets = append(nets, n)
			}
		}
		sort.Strings(nets)
		for _, n := range nets {
			out = append(out, Problem{Code: CodeNetworkNoDNS, Apps: needDNS(n),
				Message: fmt.Sprintf("network %s exists with DNS disabled (dns_enabled false; made so by hand or before DNS was installed): its containers cannot reach each other by name", n),
				Fix:     fmt.Sprintf("remove it (podman network rm -f %s; its containers go too, data stays) and lockstep makes it again with DNS", n)})
		}
	}
	if f.Rootless {
		switch {
		case f.NewUIDMap == "" && f.Down != "":
			out = append(out, Problem{Code: CodeNoNewUIDMap, Apps: sorted(all),
				Message: "rootless podman does not answer (" + f.Down + ") and there is no newuidmap/newgidmap: podman cannot start for a user with subordinate ids without them (its error: command required for rootless mode with multiple IDs)",
				Fix:     "install " + DebianUIDMap + " (Debian), then podman system migrate"})
		case f.NewUIDMap == "":
			out = append(out, Problem{Code: CodeNoNewUIDMap, Apps: sorted(all),
				Message: "rootless podman finds no newuidmap/newgidmap: it maps one uid only, and images with files of other owners fail to unpack",
				Fix:     "install " + DebianUIDMap + " (Debian), then podman system migrate"})
		case f.UIDs < minUIDsForImages:
			out = append(out, Problem{Code: CodeNoSubIDs, Apps: sorted(all),
				Message: fmt.Sprintf("rootless podman maps %d uid(s): the user has no subordinate ids, and images with files of other owners fail to unpack", f.UIDs),
				Fix:     "give the user subordinate ids (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), then podman system migrate"})
		}
	}
	if f.Catatonit == "" {
		out = append(out, Problem{Code: CodeNoCatatonit, Apps: []string{},
			Message: "podman finds no catatonit, its pause binary: podman kube play of lockstepctl export --format kube output fails (finding pause binary: exec: catatonit); apps run by lockstepd are not affected",
			Fix:     "install " + DebianCatatonit + " (Debian)"})
	}
	return out
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
