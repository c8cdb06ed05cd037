package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TB is the part of testing.TB that the helpers use, so TestMain can use them too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// Required tells whether tests must run against real components (set by make test): then a missing
// component fails the test instead of skipping it.
func Required() bool { return os.Getenv("LOCKSTEP_REQUIRE_REAL") == "1" }

// Need skips (or, when Required, fails) unless every named program is installed.
func Need(t TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if Required() {
				t.Fatalf("%s is not installed; run make deps", p)
			}
			t.Skipf("%s is not installed (make deps installs it)", p)
		}
	}
}

// ContainersConf is the podman configuration tests use: runc (crun fails on hybrid cgroups), ulimits
// that fit a container's hard limits, and no dependence on systemd.
const ContainersConf = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

// Podman is a private podman service: its own storage, run dir, config and socket.
type Podman struct {
	Dir    string
	Socket string
	cmd    *exec.Cmd
	env    []string
	flags  []string
}

// Conf is the path of the service's containers.conf (what CONTAINERS_CONF names for it).
func (p *Podman) Conf() string { return filepath.Join(p.Dir, "containers.conf") }

// URL is the service's API URL.
func (p *Podman) URL() string { return "unix://" + p.Socket }

// StartPodman starts a private podman service and registers its teardown (every container of it
// removed, storage deleted). Call t.Cleanup-less users' Close.
func StartPodman(t TB) *Podman {
	t.Helper()
	return StartPodmanConf(t, PodmanConf{})
}

// PodmanConf is more containers.conf for StartPodmanConf: TOML keys added to the [engine] and
// [network] tables of ContainersConf, e.g. Network: `network_backend = "cni"`.
type PodmanConf struct {
	Engine, Network string
}

// StartPodmanConf is StartPodman with more containers.conf.
func StartPodmanConf(t TB, more PodmanConf) *Podman {
	t.Helper()
	Need(t, "podman", "runc")
	dir, err := os.MkdirTemp("/var/tmp", "lockstep-podman-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	p := &Podman{Dir: dir, Socket: filepath.Join(dir, "podman.sock")}
	conf := filepath.Join(dir, "containers.conf")
	// Networks go to the instance's own dir: rootful podman keeps them in /etc/containers/networks by
	// default, shared by every instance, and the teardown's system reset would delete them all.
	netConf := fmt.Sprintf("[network]\nnetwork_config_dir = %q\n", filepath.Join(dir, "networks"))
	if err := os.WriteFile(conf, []byte(ContainersConf+more.Engine+"\n"+netConf+more.Network+"\n"), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	// podman 5 on cgroups v1 warns on every command (stderr), which CLI's combined output would
	// carry into what the tests compare (seen on Debian 13's podman 5.4.2, test/hosts deps-trixie)
	p.env = append(os.Environ(), "CONTAINERS_CONF="+conf, "TMPDIR="+dir, "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
	p.flags = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--tmpdir", filepath.Join(dir, "libpod-tmp")}
	if err := p.startService(); err != nil {
		p.Close()
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func (p *Podman) startService() error {
	args := append(append([]string{}, p.flags...), "system", "service", "--time=0", "unix://"+p.Socket)
	cmd := exec.Command("podman", args...)
	cmd.Env = p.env
	logf, err := os.Create(filepath.Join(p.Dir, "service.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting podman service: %w", err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if Ping(p.Socket) == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(p.Dir, "service.log"))
	return fmt.Errorf("podman service did not answer on %s within 20s: %s", p.Socket, log)
}

// StopService stops the API service (containers keep running under conmon).
func (p *Podman) StopService() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		p.cmd = nil
	}
}

// RestartService starts the API service again after StopService.
func (p *Podman) RestartService() error {
	os.Remove(p.Socket)
	return p.startService()
}

// Close removes every container of this service, stops it and deletes its storage.
func (p *Podman) Close() {
	if p.cmd != nil {
		p.CLI("rm", "--all", "--force", "--time", "0")
	}
	p.StopService()
	p.CLI("system", "reset", "--force")
	os.RemoveAll(p.Dir)
}

// CLI runs the podman command line against this service's storage and returns its combined output.
func (p *Podman) CLI(args ...string) (string, error) {
	cmd := exec.Command("podman", append(append([]string{}, p.flags...), args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// MustCLI is CLI that fails the test on error.
func (p *Podman) MustCLI(t TB, args ...string) string {
	t.Helper()
	out, err := p.CLI(args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// Ping asks the podman service on sock for /_ping.
func Ping(sock string) error {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://d/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

// BusyboxRootfs returns a tarball of a minimal root filesystem made of the host's busybox-static.
func BusyboxRootfs() ([]byte, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"bin", "etc", "tmp", "www", "data", "var", "var/www"}
	for _, d := range dirs {
		tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))})
	tw.Write(data)
	for _, a := range []string{"sh", "sleep", "httpd", "echo", "cat", "ls", "kill", "wget", "date", "true", "false", "nc",
		// what the demo node's stand-ins (catalog/demo/node) use
		"sed", "grep", "head", "tail", "cut", "wc", "mkdir", "chmod", "mv", "rm", "touch", "test", "[",
		"dirname", "base64", "xxd", "sha256sum", "nslookup", "timeout",
		// what exported init containers use (export's kube play tests)
		"cp"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	for name, content := range map[string]string{"etc/hostname": "bb\n", "etc/passwd": "root:x:0:0:root:/:/bin/sh\n", "etc/group": "root:x:0:\n", "www/index.html": "hello from busybox\n"} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		io.WriteString(tw, content)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ImportBusybox imports the busybox rootfs as image ref.
func (p *Podman) ImportBusybox(t TB, ref string) {
	t.Helper()
	Need(t, "busybox")
	data, err := BusyboxRootfs()
	if err != nil {
		t.Fatalf("busybox rootfs: %v", err)
	}
	tarPath := filepath.Join(p.Dir, "bb.tar")
	if err := os.WriteFile(tarPath, data, 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	p.MustCLI(t, "import", "--change", "CMD=[\"sh\"]", tarPath, ref)
}

// CountingProxy listens on a new unix socket and forwards every HTTP request to the podman service on
// upstream, counting requests. It is how tests count API requests exactly.
type CountingProxy struct {
	Socket string
	n      atomic.Int64
	srv    *http.Server
}

// Count returns the number of requests forwarded so far.
func (c *CountingProxy) Count() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *CountingProxy) Reset() { c.n.Store(0) }

// URL is the proxy's API URL.
func (c *CountingProxy) URL() string { return "unix://" + c.Socket }

// StartCountingProxy starts a counting proxy in front of the service at upstream (a socket path).
func StartCountingProxy(t TB, dir, upstream string) *CountingProxy {
	t.Helper()
	sock := filepath.Join(dir, fmt.Sprintf("proxy-%d.sock", time.Now().UnixNano()))
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("%v", err)
	}
	cp := &CountingProxy{Socket: sock}
	target, _ := url.Parse("http://d")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", upstream)
	}}
	cp.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.n.Add(1)
		rp.ServeHTTP(w, r)
	})}
	go cp.srv.Serve(l)
	t.Cleanup(func() { cp.srv.Close() })
	return cp
}

// Registry is a private docker-registry on 127.0.0.1.
type Registry struct {
	Addr string // host:port
}

// StartRegistry starts Debian's docker-registry on a free loopback port with storage in dir.
func StartRegistry(t TB, dir string) *Registry {
	t.Helper()
	Need(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "registry.yml")
	os.WriteFile(conf, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "registry-data"), addr)), 0o644)
	cmd := exec.Command("docker-registry", "serve", conf)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return &Registry{Addr: addr}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not answer on %s", addr)
	return nil
}

var _ TB = (*testing.T)(nil)
