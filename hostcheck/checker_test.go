package hostcheck

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"go.podman.io/common/pkg/config"
)

type fakeSource struct {
	info     Info
	nets     map[string]bool
	err      error
	requests int
}

func (f *fakeSource) HostInfo(context.Context) (Info, error) {
	f.requests++
	return f.info, f.err
}

func (f *fakeSource) NetworkDNS(context.Context) (map[string]bool, error) {
	f.requests++
	return f.nets, f.err
}

// No files: containers.conf with no helper dirs, nothing in PATH.
var noFiles = Files{Conf: func() (*config.Config, error) { return &config.Config{}, nil }, LookPath: func(string) (string, error) { return "", errors.New("not found") }}

func warnings(h *test.Hook, code string) int {
	n := 0
	for _, e := range h.AllEntries() {
		if e.Level == logrus.WarnLevel && e.Data["problem"] == code {
			n++
		}
	}
	return n
}

// The checker probes once, says each problem once, says when it goes, and after a failed probe asks
// podman again only once the connection is re-established.
func TestCheckerProbesOnceAndSaysOnce(t *testing.T) {
	log, hook := test.NewNullLogger()
	src := &fakeSource{info: Info{Version: "5.4.2", Backend: "netavark", BackendInfo: true}, nets: map[string]bool{"lockstep-s": true}}
	c := NewChecker(src, noFiles, log)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		ps := c.problems(ctx, uses)
		if len(codes(ps)) != 2 { // no aardvark (podman 5's info names no DNS helper), no catatonit
			t.Fatalf("problems %+v", ps)
		}
	}
	if src.requests != 2 || c.Probes() != 1 {
		t.Fatalf("%d requests, %d probes for three passes", src.requests, c.Probes())
	}
	if warnings(hook, CodeNoAardvark) != 1 || warnings(hook, CodeNoCatatonit) != 1 {
		t.Fatalf("log: %d and %d warnings", warnings(hook, CodeNoAardvark), warnings(hook, CodeNoCatatonit))
	}
	// aardvark-dns installed, podman restarted: the re-established connection makes a new probe.
	src.info.DNSPath = "/usr/libexec/podman/aardvark-dns"
	c.Invalidate()
	if ps := c.problems(ctx, uses); len(ps) != 1 || ps[0].Code != CodeNoCatatonit {
		t.Fatalf("after the fix: %+v", ps)
	}
	resolved := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.InfoLevel && e.Data["problem"] == CodeNoAardvark {
			resolved++
		}
	}
	if resolved != 1 || warnings(hook, CodeNoCatatonit) != 1 {
		t.Fatalf("resolved logged %d times; catatonit warned %d times", resolved, warnings(hook, CodeNoCatatonit))
	}
	// A failed probe is not repeated by every pass.
	src.err = errors.New("podman answered 500")
	c.Invalidate()
	before := src.requests
	for i := 0; i < 3; i++ {
		if ps := c.problems(ctx, uses); ps != nil {
			t.Fatalf("problems without facts: %+v", ps)
		}
	}
	if src.requests != before+1 {
		t.Fatalf("%d requests for three passes after a failed probe", src.requests-before)
	}
}

// A network seen without DNS after the probe is reported; seen with DNS again, it is not.
func TestSawNetwork(t *testing.T) {
	src := &fakeSource{info: Info{Backend: "netavark", BackendInfo: true, DNSPath: "/x/aardvark-dns"}}
	fl := noFiles
	fl.Conf = func() (*config.Config, error) {
		c := &config.Config{}
		c.Engine.HelperBinariesDir.Set([]string{t.TempDir()})
		return c, nil
	}
	c := NewChecker(src, fl, nil)
	c.SawNetwork("lockstep-mempool", false) // before any probe: nothing to update
	ctx := context.Background()
	c.problems(ctx, uses)
	c.SawNetwork("lockstep-mempool", false)
	if got := codes(c.problems(ctx, uses)); len(got[CodeNetworkNoDNS]) != 1 || got[CodeNetworkNoDNS][0] != "mempool" {
		t.Fatalf("problems %v", got)
	}
	c.SawNetwork("lockstep-mempool", true)
	if got := codes(c.problems(ctx, uses)); got[CodeNetworkNoDNS] != nil {
		t.Fatalf("problems %v", got)
	}
}

// A user's lockstepd whose podman does not answer, with no newuidmap in PATH: rootless podman
// cannot start for a user with subordinate ids (seen on a Debian host without uidmap: every podman
// command, the API service's too, fails with "command required for rootless mode with multiple
// IDs"), so the checker says so from its own look, on every app, on every pass until podman answers;
// as root, or with newuidmap there, a podman that does not answer is no host problem.
func TestPodmanDownWithoutNewUIDMap(t *testing.T) {
	log, hook := test.NewNullLogger()
	down := &fakeSource{err: errors.New("podman service unavailable: connection refused")}
	user := noFiles
	user.Euid = func() int { return 4711 }
	c := NewChecker(down, user, log)
	for i := 0; i < 2; i++ {
		ps := c.problems(context.Background(), uses)
		if len(ps) != 1 || ps[0].Code != CodeNoNewUIDMap || !strings.Contains(ps[0].Fix, "uidmap") || len(ps[0].Apps) == 0 {
			t.Fatalf("pass %d: problems %+v", i, ps)
		}
	}
	if warnings(hook, CodeNoNewUIDMap) != 1 || c.Probes() != 2 {
		t.Errorf("%d warnings, %d probes (want said once, probed each pass)", warnings(hook, CodeNoNewUIDMap), c.Probes())
	}
	// podman answers (uidmap installed): the real probe, no such problem
	down.err = nil
	down.info = Info{Version: "4.3.1", Backend: "netavark", Rootless: true, UIDs: 65537}
	withMap := user
	withMap.LookPath = func(p string) (string, error) { return "/usr/bin/" + p, nil }
	c.files = withMap
	if ps := c.problems(context.Background(), uses); codes(ps)[CodeNoNewUIDMap] != nil {
		t.Errorf("after podman answers with newuidmap there: %+v", ps)
	}
	root := noFiles
	root.Euid = func() int { return 0 }
	if ps := NewChecker(&fakeSource{err: errors.New("down")}, root, nil).problems(context.Background(), uses); ps != nil {
		t.Errorf("as root: %+v", ps)
	}
	if ps := NewChecker(&fakeSource{err: errors.New("down")}, withMap, nil).problems(context.Background(), uses); ps != nil {
		t.Errorf("with newuidmap: %+v", ps)
	}
}
