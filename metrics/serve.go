package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerConfig says what a Handler serves. Each endpoint is served only
// when configured, so that nothing is exposed by accident.
type HandlerConfig struct {
	// Gatherer is served at /metrics in Prometheus's text format.
	Gatherer prometheus.Gatherer
	// Health answers /healthz: nil means the process is alive and its
	// replica answers (200 "ok"); an error gives 503 and the error's text.
	Health func(context.Context) error
	// Ready answers /readyz the same way: nil means the replica serves
	// (normal in its current view).
	Ready func(context.Context) error
	// Pprof serves Go's profiles (net/http/pprof) at /debug/pprof/. They
	// show a program's internals: keep them off public interfaces.
	Pprof bool
	// CheckTimeout bounds each Health and Ready call (default 2 s), so that
	// a stuck replica makes its checks fail instead of hang.
	CheckTimeout time.Duration
}

// Handler serves cfg's endpoints.
func Handler(cfg HandlerConfig) http.Handler {
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 2 * time.Second
	}
	mux := http.NewServeMux()
	if cfg.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	if cfg.Health != nil {
		mux.Handle("/healthz", check(cfg.Health, cfg.CheckTimeout))
	}
	if cfg.Ready != nil {
		mux.Handle("/readyz", check(cfg.Ready, cfg.CheckTimeout))
	}
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// check answers 200 "ok" when f returns nil within timeout, and 503 with
// the reason otherwise.
func check(f func(context.Context) error, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := f(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// Server is an HTTP server of a Handler.
type Server struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Serve listens on addr (host:port; port 0 picks one) and serves
// Handler(cfg) until Close.
func Serve(addr string, cfg HandlerConfig) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server and waits for it; requests under way are cut off.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
