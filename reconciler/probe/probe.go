package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/manifest"
	"github.com/lockstep/lockstep/spec"
)

// Timeout bounds one probe.
const Timeout = time.Second

// Target returns the address to dial for a published TCP port.
func Target(p manifest.Port) string {
	host := p.HostIP
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
}

// Container checks every published TCP port of d (see Port); it returns why the first that fails
// does not answer, or "".
func Container(ctx context.Context, d *spec.Desired) string {
	paths := Paths(d)
	for _, p := range d.Request.Ports {
		if p.HostPort == 0 || p.Protocol != "tcp" {
			continue
		}
		if why := Port(ctx, p, paths[p.ContainerPort]); why != "" {
			return why
		}
	}
	return ""
}

// A published TCP port is reachable when a TCP connect from the host succeeds or, where the manifest's
// container.probes names a path for its container port, when an HTTP GET of that path answers 2xx or
// 3xx (redirects are not followed). Probes are not part of the container: they never change the spec
// hash.

// probeClient makes one request per connection, through no proxy (the environment's proxy settings are
// for the host's outbound traffic, not for its own published ports), and does not follow redirects.
var probeClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: (&net.Dialer{}).DialContext},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Paths maps the container ports of d's container to the HTTP path its manifest probes them at.
func Paths(d *spec.Desired) map[uint16]string {
	if d.App == nil {
		return nil
	}
	var probes []manifest.Probe
	for _, m := range d.App.Members() {
		if m.PodmanName == d.Name() {
			probes = m.Probes
		}
	}
	if len(probes) == 0 {
		return nil
	}
	m := map[uint16]string{}
	for _, p := range probes {
		if p.Port > 0 && p.Port <= 65535 {
			m[uint16(p.Port)] = p.Path
		}
	}
	return m
}

// Port probes one published TCP port: a GET of path when it is set, else a TCP connect. It
// returns "" when the port answers, else what failed (naming the address or URL, and the HTTP status).
func Port(ctx context.Context, p manifest.Port, path string) string {
	addr := Target(p)
	cctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if path == "" {
		var dialer net.Dialer
		c, err := dialer.DialContext(cctx, "tcp", addr)
		if err != nil {
			return addr + " does not answer"
		}
		c.Close()
		return ""
	}
	u := "http://" + addr + path
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Sprintf("GET %s: %v", u, err)
	}
	req.Header.Set("User-Agent", "lockstepd-probe")
	resp, err := probeClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Sprintf("GET %s: no answer within %s", u, Timeout)
		}
		return fmt.Sprintf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Sprintf("GET %s answered %s", u, resp.Status)
	}
	return ""
}
