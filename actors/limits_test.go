package actors_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
)

// sized returns a message that encodes to exactly n bytes.
func sized(t *testing.T, n int) proto.Message {
	t.Helper()
	for k := n; k > 0; k-- {
		if m := (&actors.StatusReply{Digest: make([]byte, k)}); proto.Size(m) == n {
			return m
		}
	}
	t.Fatalf("no message of %d bytes", n)
	return nil
}

// An oversized outgoing message is refused, counted and logged with what a
// reader needs to find its sender's bug; one within the limit passes and
// is not counted.
func TestOversizedMessageIsCountedAndLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	var o actors.Oversized
	to := actor.NewPID("10.0.0.2:7000", "vsr/replica-1")
	require.True(t, o.Allow(sized(t, 4096), 4096, 4096, to, logger))
	require.Zero(t, o.Count())
	require.Empty(t, buf.String())

	require.False(t, o.Allow(sized(t, 4097), 4097, 4096, to, logger))
	require.False(t, o.Allow(sized(t, 5000), 5000, 4096, to, nil), "refused without a logger too")
	require.True(t, o.Allow(sized(t, 5000), 5000, 0, to, logger), "a limit of zero is none")
	require.Equal(t, uint64(2), o.Count())
	line := buf.String()
	require.Equal(t, 1, strings.Count(line, "\n"), line)
	for _, want := range []string{"level=ERROR", "vsr.actors.StatusReply", "bytes=4097", "limit=4096", "10.0.0.2:7000/vsr/replica-1"} {
		require.Contains(t, line, want)
	}
}
