package httpapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/lockstep/lockstep/internal/peer"
	"github.com/lockstep/lockstep/ops"
	"github.com/lockstep/lockstep/outcome"
	"github.com/lockstep/lockstep/report"
)

// Backend is what the HTTP API drives: the runner's queue and the last report.
type Backend interface {
	Request(trigger string) *ops.Ticket
	Last() *report.Report
}

// Server is the HTTP API on a unix socket. Every request is authorized by the peer's credentials as
// the kernel gave them to the connection (package peer: uid, real groups): reading (the report,
// healthz, the metrics) needs root, the admin group or the read group; POST /v1/reconcile needs
// root or the admin group. Connections are capped (MaxConns) and an idle keep-alive connection is
// closed after IdleTimeout.
type Server struct {
	b          Backend
	adminGroup string
	readGroup  string
	log        logrus.FieldLogger
	metrics    *Metrics
	handler    http.Handler

	mu       sync.Mutex
	stopping bool
}

// Limits of the API's connections.
var (
	MaxConns    = 64
	IdleTimeout = 30 * time.Second
)

// Groups are who may do what besides root: Admin changes things (and reads), Read reads.
type Groups struct {
	Admin, Read string
}

// New returns a server; metrics may be nil.
func New(b Backend, g Groups, m *Metrics, log logrus.FieldLogger) *Server {
	s := &Server{b: b, adminGroup: g.Admin, readGroup: g.Read, log: log, metrics: m}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/report", s.reader(s.report))
	mux.HandleFunc("POST /v1/reconcile", s.reconcile)
	mux.HandleFunc("GET /v1/healthz", s.reader(s.healthz))
	if m != nil {
		mux.Handle("GET /metrics", s.reader(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP))
	}
	s.handler = mux
	return s
}

// ShutDown makes POST /v1/reconcile answer 503.
func (s *Server) ShutDown() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
}

type connKey struct{}

// Serve serves on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	l = &limitListener{Listener: l, sem: make(chan struct{}, MaxConns)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

// limitListener holds at most cap(sem) connections open: Accept waits for one to close.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	rep := s.b.Last()
	if rep == nil {
		rep = &report.Report{}
	}
	writeJSON(w, http.StatusOK, report.Bounded(rep))
}

// reader lets through the callers that may read: root, the admin group, the read group.
func (s *Server) reader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := peerOf(r)
		if !ok || !peer.Reader(c, s.readGroup, s.adminGroup) {
			writeJSON(w, http.StatusForbidden, apiError{"reading needs root or membership of group " + s.readGroup + " or " + s.adminGroup})
			return
		}
		h(w, r)
	}
}

// peerOf returns the uid and groups of the process at the other end of the unix socket.
func peerOf(r *http.Request) (peer.Caller, bool) {
	var uc *net.UnixConn
	switch c := r.Context().Value(connKey{}).(type) {
	case *net.UnixConn:
		uc = c
	case *limitedConn:
		uc, _ = c.Conn.(*net.UnixConn)
	}
	if uc == nil {
		return peer.Caller{}, false
	}
	c, err := peer.OfUnixConn(uc)
	return c, err == nil
}

func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"lockstepd is shutting down"})
		return
	}
	c, ok := peerOf(r)
	if !ok || !peer.Privileged(c, s.adminGroup) {
		s.log.WithField("uid", c.UID).Warn("refused an unprivileged reconcile over the socket")
		writeJSON(w, http.StatusForbidden, apiError{"reconcile needs root or membership of group " + s.adminGroup})
		return
	}
	t := s.b.Request("socket")
	select {
	case <-t.Done():
		rep, err := t.Result()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	case <-r.Context().Done():
	}
}

type health struct {
	Status     string   `json:"status"`
	LastPassID uint64   `json:"last_pass_id"`
	Failing    []string `json:"failing_apps"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := health{Status: "ok", Failing: []string{}}
	if rep := s.b.Last(); rep != nil {
		h.LastPassID = rep.PassID
		seen := map[string]bool{}
		for _, f := range rep.Failures {
			if !seen[f.App] {
				seen[f.App] = true
				h.Failing = append(h.Failing, f.App)
			}
		}
		if len(h.Failing) > 0 {
			h.Status = "degraded"
		}
	}
	writeJSON(w, http.StatusOK, h)
}

// Metrics are lockstep's Prometheus metrics, fed by Observe after every pass.
type Metrics struct {
	reg      *prometheus.Registry
	passes   *prometheus.CounterVec
	duration prometheus.Histogram
	actions  *prometheus.CounterVec
	failures *prometheus.CounterVec
	apps     *prometheus.GaugeVec
	lastPass prometheus.Gauge
}

// NewMetrics registers lockstep's metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_passes_total",
			Help: "Reconcile passes run, by trigger."}, []string{"trigger"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lockstep_pass_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_actions_total",
			Help: "Actions taken, by kind (install, start, recreate, ...)."}, []string{"action"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_failures_total",
			Help: "Failures recorded, by kind (what failed: app, container, companion, manifest, pass) and class (timeout, podman_unavailable, failed, ...)."},
			[]string{"kind", "class"}),
		apps: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_apps",
			Help: "Apps by state at the end of the last pass."}, []string{"state"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_last_pass_id", Help: "Id of the last completed pass."}),
	}
	m.reg.MustRegister(m.passes, m.duration, m.actions, m.failures, m.apps, m.lastPass)
	return m
}

// failureKind is the kind label of a failure: its subject; a failure without one (a report of an
// older lockstepd) is the pass's when it names no app, else the app's.
func failureKind(f report.Failure) string {
	switch {
	case f.Subject != "":
		return string(f.Subject)
	case f.App == "":
		return string(outcome.SubjectPass)
	}
	return string(outcome.SubjectApp)
}

// Observe records a finished pass.
func (m *Metrics) Observe(r *report.Report) {
	if r == nil {
		return
	}
	trigger := r.Trigger
	if strings.Contains(trigger, ",") {
		trigger = "several"
	}
	m.passes.WithLabelValues(trigger).Inc()
	m.duration.Observe(r.FinishedAt.Sub(r.StartedAt).Seconds())
	m.lastPass.Set(float64(r.PassID))
	for _, a := range r.Actions {
		m.actions.WithLabelValues(a.Action).Inc()
	}
	for _, f := range r.Failures {
		m.failures.WithLabelValues(failureKind(f), f.Class.Metric()).Inc()
	}
	m.apps.Reset()
	for _, a := range r.Apps {
		m.apps.WithLabelValues(a.State).Inc()
	}
}
