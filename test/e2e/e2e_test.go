package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestGetReportOnASocket: the report is read over a real unix socket and decoded from the JSON
// lockstepd writes (field names as in report.Report's tags).
func TestGetReportOnASocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lockstep.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/report" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"pass_id":7,"trigger":"timer","apps":[{"id":"web","state":"running"}],"companion_mode":"service",` +
			`"host_problems":[{"code":"kube-no-catatonit","message":"m","fix":"install catatonit","apps":[]}]}`))
	})}
	go srv.Serve(l)
	defer srv.Close()
	r, _ := GetReport(t, sock)
	if r.PassID != 7 || len(r.Apps) != 1 || r.Apps[0].State != "running" || r.CompanionMode != "service" ||
		len(r.HostProblems) != 1 || r.HostProblems[0].Fix != "install catatonit" {
		t.Errorf("decoded %+v", r)
	}
	if code, _, err := UnixDo(sock, "GET", "/v1/nothing", time.Second); err != nil || code != 404 {
		t.Errorf("GET /v1/nothing: %d %v", code, err)
	}
}

// TestEventuallyReturnsWhenDone: Eventually returns as soon as f says done, polling in between.
func TestEventuallyReturnsWhenDone(t *testing.T) {
	n := 0
	Eventually(t, "the third call", time.Second, time.Millisecond, func() string {
		if n++; n < 3 {
			return "not yet"
		}
		return ""
	})
	if n != 3 {
		t.Errorf("f called %d times, want 3", n)
	}
}
