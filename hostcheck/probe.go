package hostcheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"go.podman.io/common/pkg/config"

	"github.com/lockstep/lockstep/engine"
	"github.com/lockstep/lockstep/spec"
)

// Info is what the probe needs from podman's GET /info.
type Info = engine.HostInfo

// Source is the podman service the probe asks (*podman.Client).
type Source interface {
	// HostInfo is GET /info (one request).
	HostInfo(ctx context.Context) (Info, error)
	// NetworkDNS is GET /networks/json (one request): every network and its dns_enabled.
	NetworkDNS(ctx context.Context) (map[string]bool, error)
}

// Files finds what podman would find on this host: its helper binaries and CNI plugins as
// containers.conf says, and newuidmap in PATH. The zero value reads podman's containers.conf.
type Files struct {
	// Conf loads containers.conf (default: podman's own loader, honouring CONTAINERS_CONF).
	Conf func() (*config.Config, error)
	// LookPath finds a program in PATH (default exec.LookPath).
	LookPath func(string) (string, error)
	// Euid is lockstepd's effective uid (default os.Geteuid): not 0, podman is rootless.
	Euid func() int
}

func (fl Files) euid() int {
	if fl.Euid != nil {
		return fl.Euid()
	}
	return os.Geteuid()
}

// idMapless says, when podman did not answer, whether that is rootless podman without newuidmap:
// lockstepd runs as a user (the user scope) and neither newuidmap nor newgidmap is in PATH. Then
// podman, for a user with subordinate ids (useradd's default), fails on every command, the API
// service included, and only lockstepd's own look can say why.
func (fl Files) idMapless(down error) (Facts, bool) {
	if fl.euid() == 0 {
		return Facts{}, false
	}
	_, e1 := fl.lookPath("newuidmap")
	_, e2 := fl.lookPath("newgidmap")
	if e1 == nil && e2 == nil {
		return Facts{}, false
	}
	return Facts{Rootless: true, DNS: true, Catatonit: "(not looked for: podman did not answer)", NoDNS: map[string]bool{}, Down: down.Error()}, true
}

func (fl Files) conf() (*config.Config, error) {
	if fl.Conf != nil {
		return fl.Conf()
	}
	return config.New(nil)
}

func (fl Files) lookPath(name string) (string, error) {
	if fl.LookPath != nil {
		return fl.LookPath(name)
	}
	return exec.LookPath(name)
}

// Probe gathers the facts: two requests to podman, then files.
func Probe(ctx context.Context, src Source, fl Files) (Facts, error) {
	in, err := src.HostInfo(ctx)
	if err != nil {
		return Facts{}, fmt.Errorf("asking podman for its info: %w", err)
	}
	nets, err := src.NetworkDNS(ctx)
	if err != nil {
		return Facts{}, fmt.Errorf("listing podman's networks: %w", err)
	}
	f := Facts{Version: in.Version, Backend: in.Backend, Rootless: in.Rootless, UIDs: in.UIDs, NoDNS: map[string]bool{}}
	for n, dns := range nets {
		if !dns {
			f.NoDNS[n] = true
		}
	}
	conf, cerr := fl.conf()
	helper := func(name string, searchPATH bool) string {
		if cerr != nil {
			return ""
		}
		p, err := conf.FindHelperBinary(name, searchPATH)
		if err != nil {
			return ""
		}
		return p
	}
	switch {
	case in.Backend == backendNetavark && in.BackendInfo:
		f.DNS, f.DNSWhere = in.DNSPath != "", "podman's info names no DNS helper"
		if f.DNS {
			f.DNSWhere = "podman's info: " + in.DNSPath
		}
	case in.Backend == backendNetavark:
		f.DNSWhere = "aardvark-dns not in helper_binaries_dir"
		if cerr != nil {
			f.DNS, f.DNSWhere = true, "containers.conf unreadable: "+cerr.Error()
		} else if p := helper("aardvark-dns", false); p != "" {
			f.DNS, f.DNSWhere = true, p
		} else {
			f.DNSWhere += ": " + strings.Join(conf.Engine.HelperBinariesDir.Get(), ", ")
		}
	case in.Backend == backendCNI:
		if cerr != nil {
			f.DNS, f.DNSWhere = true, "containers.conf unreadable: "+cerr.Error()
			break
		}
		dirs := conf.Network.CNIPluginDirs.Get()
		f.DNSWhere = "dnsname not in cni_plugin_dirs: " + strings.Join(dirs, ", ")
		for _, d := range dirs {
			if st, err := os.Stat(filepath.Join(d, "dnsname")); err == nil && !st.IsDir() {
				f.DNS, f.DNSWhere = true, filepath.Join(d, "dnsname")
				break
			}
		}
	default:
		f.DNS = true // an unknown backend: nothing to say
	}
	if in.Rootless {
		if p, err := fl.lookPath("newuidmap"); err == nil {
			if _, err := fl.lookPath("newgidmap"); err == nil {
				f.NewUIDMap = p
			}
		}
	}
	// As podman finds its pause binary: helper_binaries_dir, then PATH.
	f.Catatonit = helper("catatonit", false)
	if f.Catatonit == "" {
		f.Catatonit, _ = fl.lookPath("catatonit")
	}
	return f, nil
}

// Checker keeps the facts between passes and says each problem once in the log.
type Checker struct {
	src   Source
	files Files
	log   logrus.FieldLogger

	mu     sync.Mutex
	facts  *Facts // nil: to be probed
	failed bool   // the last probe failed; not again until Invalidate
	seen   map[string]bool
	// probes counts probes made (tests).
	probes int
}

// NewChecker returns a checker that probes src (and the host's files, as fl finds them).
func NewChecker(src Source, fl Files, log logrus.FieldLogger) *Checker {
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = l
	}
	return &Checker{src: src, files: fl, log: log, seen: map[string]bool{}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Invalidate makes the next Problems probe again: the podman service connection was established
// again (podman restarted, upgraded or reconfigured meanwhile, perhaps).
func (c *Checker) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.facts, c.failed = nil, false
}

// SawNetwork records a network's dns_enabled as seen after the probe (lockstep's own network
// create or lookup), so a network made without DNS after start-up is reported too.
func (c *Checker) SawNetwork(name string, dns bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.facts == nil {
		return
	}
	if c.facts.NoDNS[name] != !dns {
		nd := map[string]bool{}
		for k, v := range c.facts.NoDNS {
			nd[k] = v
		}
		if dns {
			delete(nd, name)
		} else {
			nd[name] = true
		}
		f := *c.facts
		f.NoDNS = nd
		c.facts = &f
	}
}

// Probes is how many probes were made.
func (c *Checker) Probes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probes
}

// Problems returns the problems for the desired containers (their networks named with
// networkPrefix), probing first when the facts are not known (the first call that reaches podman,
// and the first after Invalidate); nil when no probe has succeeded.
func (c *Checker) Problems(ctx context.Context, desired []*spec.Desired, networkPrefix string) []Problem {
	return c.problems(ctx, Uses(desired, networkPrefix))
}

func (c *Checker) problems(ctx context.Context, uses []Use) []Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.facts == nil && !c.failed {
		c.probes++
		f, err := Probe(ctx, c.src, c.files)
		if lf, ok := c.files.idMapless(err); err != nil && ok {
			// said on every pass until podman answers (each pass probes again: podman is down, so
			// there is no no-op pass to keep cheap)
			return c.say(Classify(lf, uses))
		}
		if err != nil {
			c.failed = true
			c.log.WithError(err).Warn("checking what podman can do for the apps; again when podman's connection is re-established")
			return nil
		}
		c.facts = &f
		c.log.WithFields(logrus.Fields{"podman": f.Version, "network_backend": f.Backend, "dns": f.DNS, "dns_where": f.DNSWhere,
			"rootless": f.Rootless, "catatonit": f.Catatonit}).Info("podman checked")
	}
	if c.facts == nil {
		return nil
	}
	return c.say(Classify(*c.facts, uses))
}

// say logs each problem the first time it is found and each that went, and returns them.
func (c *Checker) say(ps []Problem) []Problem {
	now := map[string]bool{}
	for _, p := range ps {
		key := p.Code + "\x00" + p.Message
		now[key] = true
		if !c.seen[key] {
			c.log.WithFields(logrus.Fields{"problem": p.Code, "fix": p.Fix, "apps": strings.Join(p.Apps, ",")}).Warn(p.Message)
		}
	}
	for key := range c.seen {
		if !now[key] {
			code, msg, _ := strings.Cut(key, "\x00")
			c.log.WithField("problem", code).Info("resolved: " + msg)
		}
	}
	c.seen = now
	return slices.Clip(ps)
}
