package quadlet

import (
	"fmt"
	"testing"

	"github.com/lockstep/lockstep/manifest"
)

// A companion's mount of a capability (requires.apps names what an app provides) reads the data of
// the installed app that provides it, as the app's own containers' mounts do; without an installed
// set (a tool) the name is taken as an app id. Capabilities are spelled and sorted.
func TestCompanionUnitResolvesMountsAndCapabilities(t *testing.T) {
	roots := manifest.Roots{DataRoot: "/var/lib/lockstep/apps"}
	ui := &manifest.Loaded{File: "ui.yaml", App: manifest.App{ID: "ui", Name: "UI", Requires: manifest.Requires{Apps: []string{"lightning"}},
		Companions: []manifest.Companion{{ID: "ui-status", Image: "x:1", Ports: []string{"127.0.0.1:8081:80"},
			Mounts:       []manifest.DepMount{{From: "lightning", Path: "tls.cert", Target: "/lnd/tls.cert"}},
			Capabilities: manifest.Capabilities{Add: []string{"net_raw", "chown"}}}}}}
	u, err := CompanionUnit(ui, 0, roots, map[string]string{"lightning": "lnd"}, "multi-user.target")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintln(u.Volumes, u.Ports, u.CapAdd, u.App, u.Labels); got != "[{/var/lib/lockstep/apps/lnd/tls.cert /lnd/tls.cert [ro]}] [127.0.0.1:8081:80/tcp] [CAP_CHOWN CAP_NET_RAW] ui map[io.lockstep.companion:ui-status io.lockstep.companion-of:ui]\n" {
		t.Fatalf("unit %s", got)
	}
	if u, _ := CompanionUnit(ui, 0, roots, nil, ""); u.Volumes[0].Source != "/var/lib/lockstep/apps/lightning/tls.cert" {
		t.Fatalf("without providers: %v", u.Volumes)
	}
	ui.Companions[0].Ports = []string{"x"}
	if _, err := CompanionUnit(ui, 0, roots, nil, ""); err == nil {
		t.Fatal("an unparsable port was dropped, not reported")
	}
}
