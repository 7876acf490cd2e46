package cluster

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/statemachine/kv"
)

// Every way a configuration can be wrong gets a clear error wrapping
// ErrConfig, naming what is wrong; a good one loads.
func TestConfigErrorsAreClear(t *testing.T) {
	good := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"no replicas":       {Config{}, "odd number of replicas"},
		"even":              {Config{Replicas: good[:2]}, "odd number of replicas"},
		"not host:port":     {Config{Replicas: []string{"a", "b:1", "c:2"}}, `"a" is not host:port`},
		"no host":           {Config{Replicas: []string{":1", "b:1", "c:2"}}, "is not host:port"},
		"bad port":          {Config{Replicas: []string{"a:x", "b:1", "c:2"}}, "no valid port"},
		"port out of range": {Config{Replicas: []string{"a:70000", "b:1", "c:2"}}, "no valid port"},
		"duplicate":         {Config{Replicas: []string{"a:1", "b:1", "a:1"}}, "replicas 0 and 2 have the same address"},
		"partial tls":       {Config{Replicas: good, TLS: &TLSFiles{CA: "ca.pem"}}, "tls needs ca, cert and key"},
		"negative tick":     {Config{Replicas: good, Tick: -1}, "negative tick"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, ErrConfig, name)
		require.Contains(t, err.Error(), tc.want, name)
	}
	require.NoError(t, Config{ClusterID: 1, Replicas: good}.Validate())
}

func TestLoadReadsJSONAndRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"cluster_id": 7, "replicas": ["h0:1", "h1:1", "h2:1"], "tick": "20ms"}`), 0o644))
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, uint64(7), cfg.ClusterID)
	require.Equal(t, []string{"h0:1", "h1:1", "h2:1"}, cfg.Replicas)
	require.Equal(t, 20*time.Millisecond, time.Duration(cfg.Tick))

	require.NoError(t, os.WriteFile(path, []byte(`{"cluster_id": 7, "replica": ["h0:1"]}`), 0o644))
	_, err = Load(path)
	require.ErrorIs(t, err, ErrConfig)
	require.Contains(t, err.Error(), `unknown field "replica"`)

	require.NoError(t, os.WriteFile(path, []byte(`{"replicas": ["h0:1", "h1:1", "h2:1"], "tick": 10}`), 0o644))
	_, err = Load(path)
	require.ErrorIs(t, err, ErrConfig)

	_, err = Load(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, ErrConfig)
}

func TestParseReplicasTrimsAndSkipsEmpty(t *testing.T) {
	require.Equal(t, []string{"a:1", "b:2"}, ParseReplicas(" a:1, ,b:2,"))
}

// A node refuses an index outside the configuration and a missing state
// machine, and reports a port it cannot listen on as an error, not a panic.
func TestStartNodeRefusesBadInput(t *testing.T) {
	cfg := Config{ClusterID: 1, Replicas: freeAddrs(t, 3)}
	_, err := StartNode(NodeConfig{Config: cfg, Index: 3, DataDir: t.TempDir()})
	require.ErrorIs(t, err, ErrConfig)
	_, err = StartNode(NodeConfig{Config: cfg, Index: 0, DataDir: t.TempDir()})
	require.Error(t, err)
	busy, err := net.Listen("tcp", cfg.Replicas[0]) // the port is taken
	require.NoError(t, err)
	defer busy.Close()
	_, err = StartNode(NodeConfig{Config: cfg, Index: 0, DataDir: t.TempDir(), NewStateMachine: kv.New})
	require.ErrorContains(t, err, "cannot start remoting")
}
