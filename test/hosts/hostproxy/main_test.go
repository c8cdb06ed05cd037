package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProxyAllowsOnlyItsList: a request through the proxy (plain HTTP, as apt makes them) reaches an
// allowed host and is refused for any other, before any connection to it.
func TestProxyAllowsOnlyItsList(t *testing.T) {
	hits := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		io.WriteString(w, "from upstream "+r.URL.Path)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	host, _, _ := net.SplitHostPort(u.Host)
	p := httptest.NewServer(&proxy{allow: map[string]bool{host: true}})
	defer p.Close()
	pu, _ := url.Parse(p.URL)
	c := http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get(up.URL + "/dists/Release")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "from upstream /dists/Release") {
		t.Errorf("allowed host: HTTP %d %q", resp.StatusCode, b)
	}
	resp, err = c.Get(strings.Replace(up.URL, host, "localhost", 1) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || hits != 1 {
		t.Errorf("a host not allowed: HTTP %d, upstream hits %d (want 403, 1)", resp.StatusCode, hits)
	}
}
