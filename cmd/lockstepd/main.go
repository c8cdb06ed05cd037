// Command lockstepd keeps the host's containerized apps in lockstep with what the operator declared.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/hostcheck"
	"github.com/lockstep/lockstep/internal/redact"
	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/policy"
	"github.com/lockstep/lockstep/reconciler"
	"github.com/lockstep/lockstep/reconciler/companions"
	"github.com/lockstep/lockstep/reconciler/deadline"
	"github.com/lockstep/lockstep/systemd"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// commaList is a flag of comma-separated values; repeating the flag adds more.
type commaList []string

func (s *commaList) String() string { return strings.Join(*s, ",") }
func (s *commaList) Set(v string) error {
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*s = append(*s, e)
		}
	}
	return nil
}

type options struct {
	podmanURL      string
	catalogDir     string
	appsDir        string
	stateDir       string
	runtimeDir     string
	dataRoot       string
	volumeRoots    stringList
	policyFile     string
	policy         *policy.Policy
	logLevel       string
	once           bool
	interval       time.Duration
	parallel       int
	bus            string
	adminGroup     string
	readGroup      string
	polkit         string
	stopTimeout    time.Duration
	stopGrace      time.Duration
	passTimeout    time.Duration
	callTimeout    time.Duration
	pullTimeout    time.Duration
	scope          string
	mode           string
	quadletDir     string
	unitDir        string
	socket         string
	networkPrefix  string
	defaultNetwork string
	events         bool
	registries     reconciler.RegistryPolicy
	// reconnected, when set, is called when podman's event stream is re-established (not a flag:
	// run sets it to make the host check probe again).
	reconnected func()
	// companionDir is where companion units are written (watched: a deleted one is rewritten at once)
	companionDir string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o.finish(fs)
}

// newFlagSet defines lockstepd's flags on o. The man page, lockstepd(8), is generated from it
// (make docs; man.go).
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("lockstepd", flag.ContinueOnError)
	fs.StringVar(&o.podmanURL, "podman-url", "unix:///run/podman/podman.sock", "URL of the podman API service")
	fs.StringVar(&o.catalogDir, "catalog-dir", "/usr/share/lockstep/catalog", "directory of available app manifests")
	fs.StringVar(&o.appsDir, "apps-dir", "/etc/lockstep/apps.d", "directory of installed app manifests (or symlinks into the catalog)")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/lockstep", "directory for the report and other state")
	fs.StringVar(&o.runtimeDir, "runtime-dir", "/run/lockstep", "directory for runtime files")
	fs.StringVar(&o.dataRoot, "data-root", "", "directory holding each app's data dir, ${APP_DATA} (default STATE-DIR/apps)")
	fs.Var(&o.volumeRoots, "volume-root", "another directory that every app's bind-mount sources may come from (repeatable); see also the policy's volume_roots")
	fs.StringVar(&o.policyFile, "policy", policy.DefaultFile, "the operator's policy: what app manifests may ask of the host (capabilities, host network, root, volume roots, networks); a missing file grants nothing, an invalid one stops lockstepd")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.once, "once", false, "run one pass, print its report as JSON and exit (1 if it has failures); no D-Bus")
	fs.DurationVar(&o.interval, "interval", 0, "run a pass this often besides other triggers (0: only the timer unit, D-Bus calls and start-up)")
	fs.IntVar(&o.parallel, "parallel", 4, "how many apps of one dependency level are worked on at once")
	fs.StringVar(&o.bus, "bus", "system", "D-Bus bus to serve on: system, session or a bus address")
	fs.StringVar(&o.adminGroup, "admin-group", "lockstep", "group whose members may call Reconcile, Install and Remove (besides root)")
	fs.StringVar(&o.readGroup, "read-group", "lockstep-read", "group whose members may read the report and the metrics (besides root and --admin-group)")
	fs.StringVar(&o.polkit, "polkit", "auto", "auto: ask polkit whether a caller other than root may call a changing D-Bus method, where polkitd is on the bus (else --admin-group decides); off: --admin-group decides")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Minute, "on SIGTERM, how long to wait for the pass in progress before exiting anyway")
	fs.DurationVar(&o.stopGrace, "stop-grace", 0, "on SIGTERM, how long the pass in progress may go on before it is cancelled; less than --stop-timeout (0: --stop-timeout less 30 s, or less half of it when that is shorter)")
	fs.DurationVar(&o.passTimeout, "pass-timeout", reconciler.PassTimeout, "deadline of one pass; its unfinished actions fail as timed out")
	fs.DurationVar(&o.callTimeout, "podman-timeout", deadline.CallTimeout, "deadline of one podman call (list, create, start, remove, ...); a stop gets this plus the container's stop grace")
	fs.DurationVar(&o.pullTimeout, "pull-timeout", deadline.PullTimeout, "deadline of one image pull or build")
	fs.StringVar(&o.scope, "systemd-scope", "system", "systemd instance that runs companions: system, user or none (no companion stage)")
	fs.StringVar(&o.mode, "companion-mode", "auto", "how companions run: quadlet (.container files), service (plain units running podman) or auto (quadlet when podman's generator is installed)")
	fs.StringVar(&o.quadletDir, "quadlet-dir", "", "where .container files go (default /etc/containers/systemd, or ~/.config/containers/systemd for --systemd-scope user)")
	fs.StringVar(&o.unitDir, "unit-dir", "", "where plain .service units go in service mode (default /etc/systemd/system, or ~/.config/systemd/user)")
	fs.BoolVar(&o.events, "events", true, "run a pass when podman reports an app container dying or turning unhealthy, or a manifest changes (inotify), within about a second")
	fs.StringVar(&o.networkPrefix, "network-prefix", "lockstep-", "prefix of the podman network lockstep manages for each app (PREFIX+APP)")
	fs.StringVar(&o.defaultNetwork, "default-network", "", "network for containers whose manifest names none (e.g. bridge), instead of each app's own network; for rootless podman 4.3, which cannot use networks it created")
	fs.StringVar(&o.socket, "socket", "", "HTTP API socket to open when not socket-activated (default RUNTIME-DIR/lockstep.sock)")
	fs.Var((*commaList)(&o.registries.Allowed), "allowed-registries", "registries (HOST or HOST:PORT, comma-separated, repeatable) that app images may be pulled from; none given: every registry")
	fs.Var((*commaList)(&o.registries.Insecure), "insecure-registries", "registries that may be used without TLS verification by apps whose manifest lists them in registry.insecure (comma-separated, repeatable); they are allowed too")
	return fs
}

// finish checks the parsed flags and fills in the defaults that depend on others.
func (o *options) finish(fs *flag.FlagSet) (*options, error) {
	if err := o.registries.Validate(); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.dataRoot == "" {
		o.dataRoot = filepath.Join(o.stateDir, "apps")
	}
	pol, err := policy.Load(o.policyFile)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	o.policy = pol
	if o.stopGrace == 0 {
		o.stopGrace = o.stopTimeout - min(30*time.Second, o.stopTimeout/2)
	}
	if o.stopGrace <= 0 || o.stopGrace >= o.stopTimeout {
		return nil, fmt.Errorf("--stop-grace %s: must be more than 0 and less than --stop-timeout %s", o.stopGrace, o.stopTimeout)
	}
	for name, d := range map[string]time.Duration{"--pass-timeout": o.passTimeout, "--podman-timeout": o.callTimeout, "--pull-timeout": o.pullTimeout} {
		if d <= 0 {
			return nil, fmt.Errorf("%s %s: must be more than 0", name, d)
		}
	}
	if o.socket == "" {
		o.socket = filepath.Join(o.runtimeDir, "lockstep.sock")
	}
	switch o.scope {
	case "system", "user", "none":
	default:
		return nil, fmt.Errorf("--systemd-scope: %q is not system, user or none", o.scope)
	}
	switch o.mode {
	case "auto", companions.ModeQuadlet, companions.ModeService:
	default:
		return nil, fmt.Errorf("--companion-mode: %q is not auto, quadlet or service", o.mode)
	}
	if o.polkit != "auto" && o.polkit != "off" {
		return nil, fmt.Errorf("--polkit: %q is not auto or off", o.polkit)
	}
	home, _ := os.UserHomeDir()
	if o.quadletDir == "" {
		o.quadletDir = "/etc/containers/systemd"
		if o.scope == "user" {
			o.quadletDir = filepath.Join(home, ".config/containers/systemd")
		}
	}
	if o.unitDir == "" {
		o.unitDir = "/etc/systemd/system"
		if o.scope == "user" {
			o.unitDir = filepath.Join(home, ".config/systemd/user")
		}
	}
	return o, nil
}

func newLogger(level string) (*logrus.Logger, error) {
	l := logrus.New()
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	l.SetLevel(lv)
	l.SetOutput(os.Stderr)
	// Under journald the journal stamps every line; logrus's own timestamps would only repeat it.
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: os.Getenv("JOURNAL_STREAM") != "", FullTimestamp: true})
	return l, nil
}

// companionConfig sets up the companion stage from the flags: nil for --systemd-scope none.
func companionConfig(o *options) *companions.Config {
	if o.scope == "none" {
		return nil
	}
	scope := systemd.System
	wantedBy := "multi-user.target"
	if o.scope == "user" {
		scope, wantedBy = systemd.User, "default.target"
	}
	gen := systemd.DetectGenerator(scope)
	mode := o.mode
	if mode == "auto" {
		mode = companions.ModeService
		if gen != "" {
			mode = companions.ModeQuadlet
		}
	}
	dir := o.unitDir
	if mode == companions.ModeQuadlet {
		dir = o.quadletDir
	}
	return &companions.Config{Mode: mode, Dir: dir, Generator: gen, WantedBy: wantedBy, Systemd: systemd.New(scope)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) int {
	o, err := parseFlags(args)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, "lockstepd:", err)
		return 2
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockstepd:", err)
		return 2
	}
	log.WithFields(logrus.Fields{"policy": o.policyFile, "apps_granted": len(o.policy.Apps)}).Info("operator policy")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	pm := podman.New(o.podmanURL)
	// What podman cannot do for the apps (DNS, id mapping, catatonit): probed by the first pass that
	// reaches podman and again after the event stream reconnects, never on every pass.
	host := hostcheck.NewChecker(pm, hostcheck.Files{}, log)
	pm.NetworkSeen = host.SawNetwork
	o.reconnected = host.Invalidate
	companions := companionConfig(o)
	if companions != nil {
		o.companionDir = companions.Dir
		log.WithFields(logrus.Fields{"mode": companions.Mode, "dir": companions.Dir, "generator": companions.Generator}).Info("companions")
	}
	rec, err := reconciler.New(reconciler.Config{
		Companions:     companions,
		AppsDir:        o.appsDir,
		CatalogDir:     o.catalogDir,
		StateDir:       o.stateDir,
		Roots:          manifest.Roots{DataRoot: o.dataRoot, Extra: o.volumeRoots, Policy: o.policy, NetworkPrefix: o.networkPrefix},
		Parallel:       o.parallel,
		Log:            log,
		NetworkPrefix:  o.networkPrefix,
		DefaultNetwork: o.defaultNetwork,
		Registries:     o.registries,
		Timeouts:       deadline.Timeouts{Call: o.callTimeout, Pull: o.pullTimeout},
		Host:           host,
	}, pm)
	if err != nil {
		log.WithError(err).Error("starting")
		return 1
	}
	// The backstop under every log line: a secret value a message quoted by mistake is [secret].
	log.AddHook(redact.Hook{Redact: rec.Redact})
	if o.once {
		if err := pm.Connect(ctx); err != nil {
			log.WithError(err).Warn("podman is not reachable")
		}
		pctx, cancel := context.WithTimeout(ctx, o.passTimeout)
		rep := rec.Pass(pctx, "once")
		cancel()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.WithError(err).Error("printing report")
			return 1
		}
		if len(rep.Failures) > 0 {
			return 1
		}
		return 0
	}
	return serve(ctx, o, log, rec, pm)
}
