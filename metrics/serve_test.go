package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
)

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServerAnswersChecksAndServesMetrics(t *testing.T) {
	m, reg := registered(t)
	m.Observe(primaryOf3(actors.ObservedLeadershipStarted, 3, 3))
	notReady := errors.New("view-change in view 4")
	ready := notReady
	srv, err := Serve("127.0.0.1:0", HandlerConfig{Gatherer: reg,
		Health: func(context.Context) error { return nil },
		Ready:  func(context.Context) error { return ready }})
	require.NoError(t, err)
	defer srv.Close()
	base := "http://" + srv.Addr()

	code, body := fetch(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `vsr_is_primary{replica="0"} 1`)
	code, body = fetch(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", strings.TrimSpace(body))
	code, body = fetch(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "view-change in view 4", "a check that fails says why")
	ready = nil
	code, _ = fetch(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	code, _ = fetch(t, base+"/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code, "profiles are served only when asked for")
	require.NoError(t, srv.Close())
}

// A replica that never answers makes its check fail after CheckTimeout;
// the check does not hang.
func TestACheckThatNeverAnswersFailsWithinItsTimeout(t *testing.T) {
	srv, err := Serve("127.0.0.1:0", HandlerConfig{CheckTimeout: 50 * time.Millisecond,
		Health: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
	require.NoError(t, err)
	defer srv.Close()
	code, body := fetch(t, "http://"+srv.Addr()+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "deadline exceeded")
}

func TestEndpointsNotConfiguredAreNotServed(t *testing.T) {
	srv, err := Serve("127.0.0.1:0", HandlerConfig{Pprof: true})
	require.NoError(t, err)
	defer srv.Close()
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		code, _ := fetch(t, "http://"+srv.Addr()+path)
		require.Equal(t, http.StatusNotFound, code, path)
	}
	code, body := fetch(t, "http://"+srv.Addr()+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")

	_, err = Serve("127.0.0.1:-1", HandlerConfig{})
	require.Error(t, err)
	var _ prometheus.Collector = New() // a Metrics registers as a collector
}
