package spec

import (
	"fmt"
	"testing"
	"time"

	"github.com/lockstep/lockstep/manifest"
)

func TestResolve(t *testing.T) {
	ui := app("ui")
	ui.File = "/etc/lockstep/apps.d/ui.yaml"
	ui.Container.Ports = []string{"127.0.0.1:8080:80", "53/udp"}
	ui.Container.Volumes = []string{"${APP_DATA}/conf:/etc/ui:ro"}
	ui.Container.Mounts = []manifest.DepMount{{From: "lightning", Path: "public", Target: "/lnd/"}, {From: "ui", Path: "x", Target: "/x"}}
	ui.Container.Capabilities = manifest.Capabilities{Add: []string{"net_bind_service", "CAP_CHOWN"}, Drop: []string{"all"}}
	m := ui.Members()[0]
	r, err := Resolve(ui, EntryOf(m), testRoots, map[string]string{"lightning": "lnd"})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(r.Ports, r.Volumes, r.Mounts, r.CapAdd, r.CapDrop)
	want := "[127.0.0.1:8080:80/tcp 53/udp] [{/var/lib/lockstep/apps/ui/conf /etc/ui [ro]}] " +
		"[{/var/lib/lockstep/apps/lnd/public /lnd [ro]} {/var/lib/lockstep/apps/ui/x /x [ro]}] [CAP_CHOWN CAP_NET_BIND_SERVICE] [ALL]"
	if got != want {
		t.Fatalf("resolved\n got %s\nwant %s", got, want)
	}
	if len(r.Binds()) != 3 || r.Binds()[2].Target != "/x" {
		t.Fatalf("binds %v", r.Binds())
	}
	// Without an installed set, a from is an app id.
	r, _ = Resolve(ui, EntryOf(m), testRoots, nil)
	if r.Mounts[0].Source != "/var/lib/lockstep/apps/lightning/public" {
		t.Fatalf("mount without providers: %v", r.Mounts)
	}
	// A manifest that did not validate: the error names file, field and reason, and the desired
	// container carries it (its actions are then blocked and reported) instead of dropping the port.
	ui.Container.Ports = []string{"80", "nope"}
	if _, err := Resolve(ui, EntryOf(ui.Members()[0]), testRoots, nil); err == nil || err.Error()[:len(ui.File)+len(": app.container.ports[1]: ")] != ui.File+": app.container.ports[1]: " {
		t.Fatalf("error %v", err)
	}
	if d := DesiredFor(ui, testRoots); d.Err == nil {
		t.Fatal("the desired container of an unresolvable entry has no error")
	}
}

func TestEffectiveHealthFillsPodmansDefaults(t *testing.T) {
	if e := Effective(nil); e.Interval != 0 || e.Retries != 0 {
		t.Fatalf("no check: %+v", e)
	}
	e := Effective(&manifest.Health{Command: []string{"true"}, StartPeriod: manifest.Duration(5 * time.Second)})
	if e.Interval != 30*time.Second || e.Timeout != 30*time.Second || e.Retries != 3 || e.StartPeriod != 5*time.Second || e.Command[0] != "true" {
		t.Fatalf("defaults %+v", e)
	}
	e = Effective(&manifest.Health{Interval: manifest.Duration(time.Second), Timeout: manifest.Duration(2 * time.Second), Retries: 1})
	if e.Interval != time.Second || e.Timeout != 2*time.Second || e.Retries != 1 {
		t.Fatalf("given values %+v", e)
	}
}
