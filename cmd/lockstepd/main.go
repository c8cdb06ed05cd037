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

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/podman"
	"github.com/lockstep/lockstep/reconciler"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	podmanURL   string
	catalogDir  string
	appsDir     string
	stateDir    string
	runtimeDir  string
	dataRoot    string
	volumeRoots stringList
	logLevel    string
	once        bool
	interval    time.Duration
	parallel    int
	bus         string
	adminGroup  string
	stopTimeout time.Duration
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("lockstepd", flag.ContinueOnError)
	fs.StringVar(&o.podmanURL, "podman-url", "unix:///run/podman/podman.sock", "URL of the podman API service")
	fs.StringVar(&o.catalogDir, "catalog-dir", "/usr/share/lockstep/catalog", "directory of available app manifests")
	fs.StringVar(&o.appsDir, "apps-dir", "/etc/lockstep/apps.d", "directory of installed app manifests (or symlinks into the catalog)")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/lockstep", "directory for the report and other state")
	fs.StringVar(&o.runtimeDir, "runtime-dir", "/run/lockstep", "directory for runtime files")
	fs.StringVar(&o.dataRoot, "data-root", "", "directory holding each app's data dir, ${APP_DATA} (default STATE-DIR/apps)")
	fs.Var(&o.volumeRoots, "volume-root", "another directory that bind-mount sources may come from (repeatable)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.once, "once", false, "run one pass, print its report as JSON and exit (1 if it has failures); no D-Bus")
	fs.DurationVar(&o.interval, "interval", 0, "run a pass this often besides other triggers (0: only the timer unit, D-Bus calls and start-up)")
	fs.IntVar(&o.parallel, "parallel", 4, "how many apps of one dependency level are worked on at once")
	fs.StringVar(&o.bus, "bus", "system", "D-Bus bus to serve on: system, session or a bus address")
	fs.StringVar(&o.adminGroup, "admin-group", "lockstep", "group whose members may call Reconcile, Install and Remove (besides root)")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Minute, "on SIGTERM, how long to wait for the pass in progress before exiting anyway")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.dataRoot == "" {
		o.dataRoot = filepath.Join(o.stateDir, "apps")
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	pm := podman.New(o.podmanURL)
	rec, err := reconciler.New(reconciler.Config{
		AppsDir:    o.appsDir,
		CatalogDir: o.catalogDir,
		StateDir:   o.stateDir,
		Roots:      manifest.Roots{DataRoot: o.dataRoot, Extra: o.volumeRoots},
		Parallel:   o.parallel,
		Log:        log,
	}, pm)
	if err != nil {
		log.WithError(err).Error("starting")
		return 1
	}
	if o.once {
		if err := pm.Connect(ctx); err != nil {
			log.WithError(err).Warn("podman is not reachable")
		}
		rep := rec.Pass(ctx, "once")
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
