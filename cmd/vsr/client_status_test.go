package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
)

var statusTestAddrs = []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.4:7000", "10.0.0.5:7000"}

// statusReply is a reply of a replica of a five-member group in epoch 0.
func statusReply(replica uint32, status string, view uint64, primary uint32, op, commit uint64) *actors.StatusReply {
	return &actors.StatusReply{Replica: replica, Status: status, View: view, Primary: primary,
		OpNumber: op, CommitNumber: commit, Members: statusTestAddrs}
}

// mixedGroup is a group seen from a client: the primary of view 5, cut off,
// which still believes it is the primary; a backup 5 ops behind the primary;
// the primary in the middle (replica 2, of view 7); a replica that did not
// answer; and an up-to-date backup. The stale primary comes first, so that
// taking the first replica that claims to be primary gets it wrong.
func mixedGroup() []*actors.StatusReply {
	return []*actors.StatusReply{
		statusReply(0, "normal", 5, 0, 9, 9),
		statusReply(1, "normal", 7, 2, 7, 7),
		statusReply(2, "normal", 7, 2, 12, 12),
		nil,
		statusReply(4, "normal", 7, 2, 12, 11),
	}
}

// leaderlessGroup has no primary: the primary of the newest normal view (1,
// of view 6) did not answer, and replica 2 has started a view change.
func leaderlessGroup() []*actors.StatusReply {
	return []*actors.StatusReply{
		statusReply(0, "normal", 6, 1, 20, 20),
		nil,
		statusReply(2, "view-change", 7, 2, 20, 19),
		statusReply(3, "normal", 6, 1, 18, 18),
		statusReply(4, "normal", 6, 1, 20, 20),
	}
}

// statusOutput runs printStatus on the replies and returns what it printed
// and its exit code.
func statusOutput(st []*actors.StatusReply, f statusFormat) (string, int) {
	var out bytes.Buffer
	code := printStatus(st, cluster.Config{ClusterID: 1, Replicas: statusTestAddrs[:len(st)]}, f, &out)
	return out.String(), code
}

// parseStatusTable splits the table into its header, its rows keyed by the
// header's column names, and the lines under it. Every row must split into
// exactly the header's columns: scripts that cut the table on whitespace
// depend on that.
func parseStatusTable(t *testing.T, out string) (header []string, rows []map[string]string, footer []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header = strings.Fields(lines[0])
	require.Equal(t, "REPLICA", header[0], out)
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if _, err := strconv.Atoi(f[0]); err != nil {
			footer = lines[1+i:]
			break
		}
		require.Len(t, f, len(header), "row %q does not split into the header's columns:\n%s", line, out)
		row := map[string]string{}
		for c, name := range header {
			row[name] = f[c]
		}
		rows = append(rows, row)
	}
	return header, rows, footer
}

// column is one column of the table, top to bottom.
func column(rows []map[string]string, name string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[name])
	}
	return out
}

// decodeStatusJSON decodes the JSON output generically, so that the test
// sees the document's keys as a script would, not through the Go type that
// wrote them.
func decodeStatusJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	return doc
}

func TestStatusTableHasAHeaderAndOneAlignedRowPerReplicaAsked(t *testing.T) {
	out, _ := statusOutput(mixedGroup(), statusFormat{})
	header, rows, _ := parseStatusTable(t, out)
	require.Equal(t, []string{"REPLICA", "ADDRESS", "STATUS", "ROLE", "EPOCH", "VIEW", "OP", "COMMIT", "LAG", "DROPPED"}, header)
	require.Len(t, rows, 5, out)
	require.Equal(t, []string{"0", "1", "2", "3", "4"}, column(rows, "REPLICA"))
	require.Equal(t, statusTestAddrs, column(rows, "ADDRESS"))
	require.Equal(t, []string{"normal", "normal", "normal", "down", "normal"}, column(rows, "STATUS"))
	require.Equal(t, []string{"5", "7", "7", "-", "7"}, column(rows, "VIEW"))
	require.Equal(t, []string{"9", "7", "12", "-", "12"}, column(rows, "OP"))
	require.Equal(t, []string{"9", "7", "12", "-", "11"}, column(rows, "COMMIT"))
	require.Equal(t, []string{"0", "0", "0", "-", "0"}, column(rows, "EPOCH"))

	// Aligned: every cell starts where its column's name starts, and the
	// cells are separated by spaces (no tabs, which terminals align
	// differently).
	require.NotContains(t, out, "\t")
	lines := strings.Split(out, "\n")
	for _, line := range lines[1:6] {
		require.Equal(t, cellStarts(lines[0]), cellStarts(line), "not aligned:\n%s", out)
	}
}

// cellStarts are the offsets at which the cells of a line start.
func cellStarts(line string) []int {
	var out []int
	for i := range line {
		if line[i] != ' ' && (i == 0 || line[i-1] == ' ') {
			out = append(out, i)
		}
	}
	return out
}

func TestStatusTableMarksOnlyThePrimaryOfTheNewestNormalView(t *testing.T) {
	out, _ := statusOutput(mixedGroup(), statusFormat{})
	_, rows, footer := parseStatusTable(t, out)
	// Replica 0 is normal and primary of view 5, but the others are in view
	// 7: it was cut off, and it is not the group's primary.
	require.Equal(t, []string{"stale-primary", "backup", "*primary", "-", "backup"}, column(rows, "ROLE"))
	require.Contains(t, footer, "primary: replica 2 (10.0.0.3:7000), epoch 0 view 7", out)
}

func TestStatusLagIsOpsBehindThePrimaryAndUnknownOutsideItsView(t *testing.T) {
	out, _ := statusOutput(mixedGroup(), statusFormat{})
	_, rows, _ := parseStatusTable(t, out)
	// Replica 1 is 5 behind; the primary and replica 4 hold all its ops;
	// replica 3 did not answer, and replica 0's op numbers are of view 5.
	require.Equal(t, []string{"-", "5", "0", "-", "0"}, column(rows, "LAG"))
}

func TestStatusLagIsNeverNegative(t *testing.T) {
	// The replicas answer one by one, so a backup can answer after it took
	// Prepares that the primary had not sent when it answered.
	st := []*actors.StatusReply{statusReply(0, "normal", 5, 0, 10, 10), statusReply(1, "normal", 5, 0, 13, 10), statusReply(2, "normal", 5, 0, 10, 10)}
	out, _ := statusOutput(st, statusFormat{})
	_, rows, _ := parseStatusTable(t, out)
	require.Equal(t, []string{"0", "0", "0"}, column(rows, "LAG"))
}

func TestStatusWithoutAPrimarySaysSoAndLeavesLagUnknown(t *testing.T) {
	out, _ := statusOutput(leaderlessGroup(), statusFormat{})
	_, rows, footer := parseStatusTable(t, out)
	require.Equal(t, []string{"backup", "-", "backup", "backup", "backup"}, column(rows, "ROLE"))
	require.Equal(t, []string{"-", "-", "-", "-", "-"}, column(rows, "LAG"))
	require.Len(t, footer, 2, out)
	require.True(t, strings.HasPrefix(footer[1], "no primary: "), out)

	out, _ = statusOutput(leaderlessGroup(), statusFormat{json: true})
	doc := decodeStatusJSON(t, out)
	require.Contains(t, doc, "primary")
	require.Nil(t, doc["primary"], out)
	for _, r := range doc["replicas"].([]any) {
		require.Nil(t, r.(map[string]any)["lag"], out)
	}
}

func TestStatusOrdersViewsWithinEpochs(t *testing.T) {
	// Views start again at 0 in every epoch: the primary of epoch 1 view 0
	// is newer than the primary of epoch 0 view 5, which was cut off during
	// the reconfiguration.
	st := []*actors.StatusReply{statusReply(0, "normal", 5, 0, 30, 30), statusReply(1, "normal", 0, 0, 33, 33), statusReply(2, "normal", 0, 0, 31, 31)}
	st[1].Epoch, st[2].Epoch = 1, 1
	st[1].Replica, st[2].Replica = 0, 1
	out, _ := statusOutput(st, statusFormat{})
	_, rows, footer := parseStatusTable(t, out)
	require.Equal(t, []string{"stale-primary", "*primary", "backup"}, column(rows, "ROLE"), out)
	require.Equal(t, []string{"-", "0", "2"}, column(rows, "LAG"), out)
	require.Contains(t, footer, "primary: replica 1 (10.0.0.2:7000), epoch 1 view 0", out)
}

func TestStatusNamesTheMembersOfTheNewestEpoch(t *testing.T) {
	st := mixedGroup()
	st[4].Epoch, st[4].Members = 1, []string{"10.0.0.1:7000", "10.0.0.3:7000", "10.0.0.9:7000"}
	out, _ := statusOutput(st, statusFormat{})
	_, _, footer := parseStatusTable(t, out)
	require.Equal(t, "epoch 1 members: 10.0.0.1:7000, 10.0.0.3:7000, 10.0.0.9:7000", footer[0], out)

	out, _ = statusOutput(st, statusFormat{json: true})
	doc := decodeStatusJSON(t, out)
	require.Equal(t, 1.0, doc["epoch"], out)
	require.Equal(t, []any{"10.0.0.1:7000", "10.0.0.3:7000", "10.0.0.9:7000"}, doc["members"], out)
}

func TestStatusExitsOneExactlyWhenAReplicaDidNotAnswer(t *testing.T) {
	allUp := mixedGroup()
	allUp[3] = statusReply(3, "normal", 7, 2, 12, 12)
	for _, f := range []statusFormat{{}, {json: true}, {digest: true}} {
		_, code := statusOutput(allUp, f)
		require.Equal(t, 0, code, "%+v", f)
		_, code = statusOutput(mixedGroup(), f)
		require.Equal(t, 1, code, "%+v", f)
		_, code = statusOutput(leaderlessGroup(), f)
		require.Equal(t, 1, code, "%+v", f)
	}
	// Nothing answered: still one row per replica, each down.
	out, code := statusOutput([]*actors.StatusReply{nil, nil, nil}, statusFormat{})
	require.Equal(t, 1, code)
	_, rows, footer := parseStatusTable(t, out)
	require.Equal(t, []string{"down", "down", "down"}, column(rows, "STATUS"))
	require.Len(t, footer, 1, out)
	require.True(t, strings.HasPrefix(footer[0], "no primary: "), out)
	out, _ = statusOutput([]*actors.StatusReply{nil, nil, nil}, statusFormat{json: true})
	doc := decodeStatusJSON(t, out)
	require.Equal(t, []any{}, doc["members"], "members is an empty list, not null:\n%s", out)
	require.Contains(t, doc, "epoch", out)
	require.Nil(t, doc["epoch"], out)
}

func TestStatusJSONHasTheDocumentedShape(t *testing.T) {
	out, _ := statusOutput(mixedGroup(), statusFormat{json: true})
	require.True(t, strings.HasPrefix(out, "{\n  \""), "not indented:\n%s", out)
	doc := decodeStatusJSON(t, out)
	require.ElementsMatch(t, []string{"replicas", "primary", "members", "epoch"}, keys(doc), out)
	require.Equal(t, 2.0, doc["primary"], out)
	require.Equal(t, 0.0, doc["epoch"], out)
	require.Equal(t, []any{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.4:7000", "10.0.0.5:7000"}, doc["members"], out)

	replicas := doc["replicas"].([]any)
	require.Len(t, replicas, 5, out)
	// A reachable replica has every number, its zeros too.
	require.Equal(t, map[string]any{"replica": 1.0, "address": "10.0.0.2:7000", "reachable": true, "status": "normal",
		"role": "backup", "epoch": 0.0, "view": 7.0, "op": 7.0, "commit": 7.0, "lag": 5.0, "dropped": 0.0}, replicas[1])
	// A down replica has no numbers, and a null lag.
	require.Equal(t, map[string]any{"replica": 3.0, "address": "10.0.0.4:7000", "reachable": false, "status": "down", "lag": nil}, replicas[3])
	require.Equal(t, "primary", replicas[2].(map[string]any)["role"], out)
	require.Equal(t, 0.0, replicas[2].(map[string]any)["lag"], out)
	require.Equal(t, "stale-primary", replicas[0].(map[string]any)["role"], out)
	require.Contains(t, replicas[0], "lag", out)
	require.Nil(t, replicas[0].(map[string]any)["lag"], out)
}

func TestStatusDroppedCountsForeignMessagesToo(t *testing.T) {
	st := mixedGroup()
	st[1].Dropped, st[1].Foreign = 3, 4
	out, _ := statusOutput(st, statusFormat{})
	_, rows, _ := parseStatusTable(t, out)
	require.Equal(t, []string{"0", "7", "0", "-", "0"}, column(rows, "DROPPED"))
	out, _ = statusOutput(st, statusFormat{json: true})
	require.Equal(t, 7.0, decodeStatusJSON(t, out)["replicas"].([]any)[1].(map[string]any)["dropped"], out)
}

func TestStatusDigestIsShownOnlyWhenAskedFor(t *testing.T) {
	st := mixedGroup()
	for j, s := range st {
		if s != nil {
			s.Digest = bytes.Repeat([]byte{byte(0xa0 + j)}, 32)
		}
	}
	out, _ := statusOutput(st, statusFormat{})
	header, _, _ := parseStatusTable(t, out)
	require.NotContains(t, header, "STATE")
	out, _ = statusOutput(st, statusFormat{json: true})
	require.NotContains(t, out, "digest")

	// The table shows the first six bytes; the JSON, for scripts that
	// compare states, all of them.
	out, _ = statusOutput(st, statusFormat{digest: true})
	header, rows, _ := parseStatusTable(t, out)
	require.Equal(t, "STATE", header[len(header)-1])
	require.Equal(t, []string{"a0a0a0a0a0a0", "a1a1a1a1a1a1", "a2a2a2a2a2a2", "-", "a4a4a4a4a4a4"}, column(rows, "STATE"))
	out, _ = statusOutput(st, statusFormat{digest: true, json: true})
	replicas := decodeStatusJSON(t, out)["replicas"].([]any)
	require.Equal(t, hex.EncodeToString(st[2].Digest), replicas[2].(map[string]any)["digest"], out)
	require.NotContains(t, replicas[3], "digest", out)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
