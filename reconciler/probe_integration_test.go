package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/report"
)

// TestHTTPProbeFailureIsRepaired: busybox httpd serves /health (written at every start); once the file
// is gone the port still accepts connections but the path answers 404: reported unreachable with the
// status, restarted, and serving again.
func TestHTTPProbeFailureIsRepaired(t *testing.T) {
	f := newFixture(t)
	f.reachGrace = -1
	f.rec = f.newReconciler(f.client)
	port := freePort(t)
	f.app("it-http-probe", fmt.Sprintf(`  container:
    image: %s
    command: [sh, -c, 'mkdir -p /tmp/www && echo ok > /tmp/www/health && httpd -p 8080 -h /tmp/www; exec sleep 100000']
    ports: ["127.0.0.1:%d:8080/tcp"]
    probes: [{port: 8080, path: /health}]
    stop_grace_period: 1s
`, bbImage, port))
	noFailures(t, f.pass())
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	status := func() int {
		for i := 0; i < 50; i++ {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0
	}
	if s := status(); s != 200 {
		t.Fatalf("not serving after install: %d", s)
	}
	if r := f.pass(); len(r.Actions) != 0 || len(r.Failures) != 0 || r.Apps[0].State != "running" {
		t.Fatalf("serving: %+v %+v %+v", r.Actions, r.Failures, r.Apps)
	}
	// The path goes away; the server and its port stay up (a TCP probe would pass).
	f.pm.MustCLI(t, "exec", "it-http-probe", "busybox", "rm", "/tmp/www/health")
	if s := status(); s != 404 {
		t.Fatalf("after rm: %d", s)
	}
	want := fmt.Sprintf("running but unreachable: GET %s answered 404 Not Found", url)
	f.reachGrace = 0
	patient := f.newReconciler(f.client)
	r := patient.Pass(context.Background(), "test")
	if len(r.Actions) != 0 || r.Apps[0].State != report.StateUnreachable || len(r.Failures) != 1 || r.Failures[0].Error != want {
		t.Fatalf("within grace: %+v %+v %+v", r.Actions, r.Apps, r.Failures)
	}
	id := f.id("it-http-probe")
	r = f.pass()
	if got := actions(r); got != "it-http-probe:restart" || !strings.HasPrefix(r.Actions[0].Cause, want+" (for ") {
		t.Fatalf("actions %q %+v", got, r.Actions)
	}
	if s := status(); s != 200 {
		t.Fatalf("after the repair: %d", s)
	}
	if f.id("it-http-probe") != id {
		t.Fatal("restart recreated the container")
	}
	if r := f.pass(); len(r.Actions) != 0 || len(r.Failures) != 0 || r.Apps[0].State != "running" {
		t.Fatalf("after the repair: %+v %+v %+v", r.Actions, r.Failures, r.Apps)
	}
}
