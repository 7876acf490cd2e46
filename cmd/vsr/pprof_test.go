package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// -pprof serves Go's profile index, and only under /debug/pprof/.
func TestServePprofServesTheProfileIndexOnly(t *testing.T) {
	at, stop, err := servePprof("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	resp, err := http.Get("http://" + at + "/debug/pprof/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "goroutine")

	resp, err = http.Get("http://" + at + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	_, _, err = servePprof("127.0.0.1:-1")
	require.Error(t, err)
}
