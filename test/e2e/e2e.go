// Package e2e holds what the end-to-end suites share, test/sandbox (a systemd over this machine's
// filesystem) and test/hosts (fresh Debian hosts): running commands, polling until something holds,
// commands as a non-root user with their systemd --user session's environment, HTTP on lockstepd's
// unix socket, and lockstepd's report as its JSON API gives it (decoded into this package's own
// Report, so that the suites check the wire format, not the daemon's Go types).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Sh runs a command and returns its output, trimmed; a failure fails the test with the output.
func Sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Try runs a command and returns its output, trimmed, and its error.
func Try(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Eventually polls f every poll until it returns "" (done), failing the test with f's last answer
// (why it is not done yet) after timeout.
func Eventually(t testing.TB, what string, timeout, poll time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := f()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(poll)
	}
}

// User is a non-root user whose commands run with the environment their systemd --user session
// has (XDG_RUNTIME_DIR, the session bus).
type User struct {
	Name string
	UID  int
	Home string
}

// Run runs a command as the user (setpriv, the user's groups), in /.
func (u User) Run(name string, args ...string) (string, error) {
	full := append([]string{fmt.Sprintf("--reuid=%d", u.UID), fmt.Sprintf("--regid=%d", u.UID), "--init-groups", "--",
		"env", "HOME=" + u.Home, "USER=" + u.Name, fmt.Sprintf("XDG_RUNTIME_DIR=/run/user/%d", u.UID),
		fmt.Sprintf("DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus", u.UID), "PODMAN_IGNORE_CGROUPSV1_WARNING=1", name}, args...)
	cmd := exec.Command("setpriv", full...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Must is Run that fails the test on an error.
func (u User) Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := u.Run(name, args...)
	if err != nil {
		t.Fatalf("as %s: %s %s: %v\n%s", u.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// UnixDo makes an HTTP request to lockstepd's API on a unix socket (a request on it
// socket-activates the daemon) and returns the status and body.
func UnixDo(sock, method, path string, timeout time.Duration) (int, string, error) {
	c := http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://lockstep"+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// HTTPGet is a GET with a short timeout, returning the status and body.
func HTTPGet(url string) (int, string, error) {
	c := http.Client{Timeout: 8 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Report is lockstepd's report as GET /v1/report and report.json give it: the fields the suites check.
type Report struct {
	PassID    uint64    `json:"pass_id"`
	Trigger   string    `json:"trigger"`
	StartedAt time.Time `json:"started_at"`
	Actions   []struct {
		App, Action, Cause string
	} `json:"actions"`
	Failures []struct {
		App, Error string
	} `json:"failures"`
	Apps          []Status      `json:"apps"`
	Companions    []Status      `json:"companions"`
	CompanionMode string        `json:"companion_mode"`
	HostProblems  []HostProblem `json:"host_problems"`
}

// Status is an app's or a companion's row.
type Status struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// HostProblem is a row of host_problems (package hostcheck).
type HostProblem struct {
	Code, Message, Fix string
	Apps               []string
}

// GetReport asks lockstepd on sock for its report; a failure fails the test. It returns the body too.
func GetReport(t testing.TB, sock string) (Report, string) {
	t.Helper()
	code, body, err := UnixDo(sock, "GET", "/v1/report", 30*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("GET /v1/report on %s: HTTP %d %v %s", sock, code, err, body)
	}
	var r Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, body)
	}
	return r, body
}
