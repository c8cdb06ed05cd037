package quadlet

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/internal/testenv"
	"github.com/lockstep/lockstep/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var cases = map[string]Unit{
	"minimal": {ID: "web-ui", App: "web", Image: "localhost/web-ui:1"},
	"full": {
		ID: "bitcoin-ui", App: "bitcoin-knots", Description: "Bitcoin Knots web UI",
		Image: "docker.io/library/nginx:1.27",
		Exec:  []string{"nginx", "-g", "daemon off;"},
		Env:   map[string]string{"TZ": "UTC", "B_GREETING": "hello world"},
		Ports: []manifest.Port{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostIP: "::1", HostPort: 8443, ContainerPort: 443, Protocol: "tcp"}, {ContainerPort: 9000, Protocol: "udp"}},
		Volumes: []manifest.Volume{{Source: "/var/lib/lockstep/apps/bitcoin-knots/ui/nginx.conf", Target: "/etc/nginx/nginx.conf", Options: []string{"ro"}},
			{Source: "/var/lib/lockstep/apps/bitcoin-knots/ui/cache", Target: "/var/cache/nginx"}},
		CapDrop: []string{"ALL"}, CapAdd: []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
		User:        "101:101",
		Labels:      map[string]string{"io.lockstep.app": "bitcoin-knots", "io.lockstep.companion": "bitcoin-ui"},
		After:       []string{"lockstep-bitcoin-knots.service"},
		StopTimeout: 30,
	},
	"app-container": {
		ID: "bitcoin-knots", App: "bitcoin-knots", Image: "docker.io/bitcoinknots/bitcoin:28.1",
		Entrypoint: []string{"/entrypoint.sh", "--log level"}, Exec: []string{"bitcoind", "-conf=/data/bitcoin.conf"},
		ReadOnly: true,
		Health:   &Health{Cmd: []string{"bitcoin-cli", "-rpcwait", "getblockchaininfo", "100%"}, Interval: 30 * time.Second, Timeout: 10 * time.Second, StartPeriod: 2 * time.Minute, Retries: 3},
	},
	"host-network": {ID: "lnd-ui", App: "lnd", Image: "localhost/lnd-ui:2", Network: "host", User: "1000", WantedBy: "default.target"},
	"escaping": {
		ID: "tricky", App: "tricky", Image: "localhost/t:1",
		Exec:   []string{"sh", "-c", `echo "$HOME" 100% \done`, "two words"},
		Env:    map[string]string{"PCT": "50%", "DOLLAR": "$PATH", "QUOTE": `say "hi"`, "BS": `a\b`},
		Labels: map[string]string{"note": "x%y"},
	},
}

func TestGolden(t *testing.T) {
	for name, u := range cases {
		for _, kind := range []struct {
			ext    string
			render func(Unit) ([]byte, error)
		}{{".container", RenderContainer}, {".service", RenderService}} {
			t.Run(name+kind.ext, func(t *testing.T) {
				got, err := kind.render(u)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := kind.render(u)
				if !bytes.Equal(got, again) {
					t.Fatal("rendering twice gave different output")
				}
				golden := filepath.Join("testdata", name+kind.ext)
				if *update {
					os.WriteFile(golden, got, 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./quadlet -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s differs from the golden file (run with -update if intended):\n%s", golden, got)
				}
			})
		}
	}
}

func TestUnrepresentableValuesAreRejected(t *testing.T) {
	for name, mut := range map[string]func(*Unit){
		"newline in command": func(u *Unit) { u.Exec = []string{"a\nExecStartPre=/bin/evil"} },
		"newline in env":     func(u *Unit) { u.Env = map[string]string{"A": "x\n[Service]"} },
		"space in image":     func(u *Unit) { u.Image = "a b" },
		"trailing backslash": func(u *Unit) { u.Description = `ends with \` },
		"quote in volume":    func(u *Unit) { u.Volumes = []manifest.Volume{{Source: `/a"b`, Target: "/c"}} },
		"equals in env name": func(u *Unit) { u.Env = map[string]string{"A=B": "c"} },
		"NUL in label":       func(u *Unit) { u.Labels = map[string]string{"a": "b\x00"} },
		"empty id":           func(u *Unit) { u.ID = "" },
		"space in network":   func(u *Unit) { u.Network = "a b" },
		"newline in after":   func(u *Unit) { u.After = []string{"a.service\nExecStart=x"} },
		"newline in health":  func(u *Unit) { u.Health = &Health{Cmd: []string{"a\nExecStart=x"}} },
		"empty health":       func(u *Unit) { u.Health = &Health{} },
		"newline in entry":   func(u *Unit) { u.Entrypoint = []string{"a\n[Service]"} },
	} {
		u := cases["minimal"]
		mut(&u)
		if _, err := RenderContainer(u); err == nil {
			t.Errorf("%s: RenderContainer accepted it", name)
		}
		if _, err := RenderService(u); err == nil {
			t.Errorf("%s: RenderService accepted it", name)
		}
	}
}

// structure checks that a rendered file has only the expected sections and keys, each once where it
// must be, and no continuation lines: the invariant that no input can inject a key or a section.
func structure(t *testing.T, out []byte, service bool) {
	t.Helper()
	allowed := map[string]map[string]bool{
		"Unit": {"Description": true, "Wants": true, "After": true},
		"Container": {"ContainerName": true, "Image": true, "Exec": true, "Environment": true, "PublishPort": true, "Volume": true, "Network": true, "DropCapability": true, "AddCapability": true, "User": true, "Group": true, "Label": true, "StopTimeout": true,
			"Entrypoint": true, "ReadOnly": true, "HealthCmd": true, "HealthInterval": true, "HealthTimeout": true, "HealthStartPeriod": true, "HealthRetries": true},
		"Service": {"Restart": true, "RestartSec": true, "SuccessExitStatus": true, "TimeoutStopSec": true},
		"Install": {"WantedBy": true},
	}
	want := []string{"Unit", "Container", "Service", "Install"}
	if service {
		want = []string{"Unit", "Service", "Install"}
		for _, k := range []string{"Environment", "Type", "NotifyAccess", "KillMode", "Delegate", "SyslogIdentifier", "ExecStart", "ExecStop", "ExecStopPost"} {
			allowed["Service"][k] = true
		}
	}
	var sections []string
	single := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	section := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, `\`) {
			t.Fatalf("continuation line %q in:\n%s", line, out)
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			sections = append(sections, section)
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok || !allowed[section][k] {
				t.Fatalf("unexpected line %q in [%s] of:\n%s", line, section, out)
			}
			single[section+"."+k]++
		}
	}
	if strings.Join(sections, ",") != strings.Join(want, ",") {
		t.Fatalf("sections %v in:\n%s", sections, out)
	}
	for _, k := range []string{"Unit.Description", "Container.Image", "Container.ContainerName", "Container.Exec", "Container.User", "Service.ExecStart", "Install.WantedBy"} {
		if single[k] > 1 {
			t.Fatalf("%s appears %d times in:\n%s", k, single[k], out)
		}
	}
}

func FuzzRenderNoInjection(f *testing.F) {
	f.Add("web-ui", "localhost/x:1", "sh", "-c echo hi", "A", "b c", "desc", "1000:1000", "host", "/data:/d")
	f.Add("x", "i", "a\nb", "%$\"\\", "K", "v\n[Service]", "d\\", "u", "n", "/a b:/c")
	f.Fuzz(func(t *testing.T, id, image, exec0, exec1, ek, ev, desc, user, network, vol string) {
		src, dst, _ := strings.Cut(vol, ":")
		u := Unit{ID: id, App: "app", Image: image, Exec: []string{exec0, exec1}, Env: map[string]string{ek: ev},
			Description: desc, User: user, Network: network, Volumes: []manifest.Volume{{Source: src, Target: dst}},
			Labels: map[string]string{ek: ev}}
		if out, err := RenderContainer(u); err == nil {
			structure(t, out, false)
		}
		if out, err := RenderService(u); err == nil {
			structure(t, out, true)
		}
	})
}

func TestGoldenStructure(t *testing.T) {
	for _, u := range cases {
		c, _ := RenderContainer(u)
		structure(t, c, false)
		s, _ := RenderService(u)
		structure(t, s, true)
	}
}

// TestGeneratorAcceptsGoldens runs the real Quadlet generator (built from the podman module this
// project requires) in dry-run mode over every golden .container file: it is the judge of validity.
func TestGeneratorAcceptsGoldens(t *testing.T) {
	bin := testenv.QuadletBinary(t)
	dir := t.TempDir()
	for name, u := range cases {
		c, err := RenderContainer(u)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, ContainerFile(name)), c, 0o644)
	}
	cmd := exec.Command(bin, "-dryrun")
	cmd.Env = append(os.Environ(), "QUADLET_UNIT_DIRS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quadlet -dryrun: %v\n%s", err, out)
	}
	for name := range cases {
		if !strings.Contains(string(out), "---"+ServiceFile(name)+"---") {
			t.Errorf("generator produced no %s:\n%s", ServiceFile(name), out)
		}
	}
	// The escaping survives into ExecStart as systemd will read it.
	for _, want := range []string{`$$HOME`, `100%%`, `\"hi\"`, `--env PCT=50%%`, `--env DOLLAR=$$PATH`,
		// An exported app's entrypoint and health check keep their word boundaries (JSON arrays).
		`"--entrypoint=[\"/entrypoint.sh\",\"--log\x20level\"]"`, `--read-only`, `--health-cmd "[\"bitcoin-cli\",\"-rpcwait\",\"getblockchaininfo\",\"100%%\"]"`,
		`--health-start-period 2m0s`, `--health-retries 3`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("generated service lacks %s:\n%s", want, out)
		}
	}
	// The same dry-run is how lockstep reports a rejected unit: a missing Quadlet network unit.
	bad := cases["minimal"]
	bad.Network = "missing.network"
	c, _ := RenderContainer(bad)
	os.WriteFile(filepath.Join(dir, ContainerFile("bad")), c, 0o644)
	msg, err := DryRun(bin, dir, ContainerFile("bad"))
	if err == nil || !strings.Contains(msg, "missing.network") {
		t.Fatalf("dry run of a bad unit: %v %q", err, msg)
	}
}
