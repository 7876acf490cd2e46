package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// historyCheckTimeout bounds every check; the histories here are tiny, so
// hitting it would itself be a failure.
const historyCheckTimeout = 10 * time.Second

func putIn(key, value string) Input { return Input{Kind: OpPut, Key: key, Value: value} }
func getIn(key string) Input        { return Input{Kind: OpGet, Key: key} }
func casIn(key, expected, value string) Input {
	return Input{Kind: OpCAS, Key: key, Expected: expected, Value: value}
}
func putIfAbsentIn(key, value string) Input {
	return Input{Kind: OpPutIfAbsent, Key: key, Value: value}
}

var (
	outDone     = Output{}
	outUnknown  = Output{Unknown: true}
	outAbsent   = Output{Found: false}
	outSwapped  = Output{Swapped: true}
	outRejected = Output{Swapped: false}
)

func outFound(value string) Output { return Output{Found: true, Value: value} }

// addHistoryOp adds one op that ran from call to ret.
func addHistoryOp(h *History, client int, in Input, call int64, out Output, ret int64) {
	h.Complete(h.Invoke(client, in, call), out, ret)
}

// requireHistoryResult checks h and requires the given verdict, with ok agreeing.
func requireHistoryResult(t *testing.T, h *History, want porcupine.CheckResult) porcupine.LinearizationInfo {
	t.Helper()
	ok, result, info := h.Check(historyCheckTimeout)
	require.Equal(t, want, result)
	require.Equal(t, want == porcupine.Ok, ok)
	return info
}

func TestCheckAcceptsEmptyHistory(t *testing.T) {
	requireHistoryResult(t, &History{}, porcupine.Ok)
}

func TestCheckAcceptsSequentialCorrectHistory(t *testing.T) {
	h := &History{}
	addHistoryOp(h, 0, getIn("x"), 0, outAbsent, 1)
	addHistoryOp(h, 0, casIn("x", "", "0"), 2, outRejected, 3) // absent is not equal to ""
	addHistoryOp(h, 0, putIfAbsentIn("x", "1"), 4, outSwapped, 5)
	addHistoryOp(h, 1, putIfAbsentIn("x", "9"), 6, outRejected, 7)
	addHistoryOp(h, 1, getIn("x"), 8, outFound("1"), 9)
	addHistoryOp(h, 0, casIn("x", "1", "2"), 10, outSwapped, 11)
	addHistoryOp(h, 1, casIn("x", "1", "3"), 12, outRejected, 13)
	addHistoryOp(h, 0, putIn("x", "4"), 14, outDone, 15)
	addHistoryOp(h, 1, getIn("x"), 16, outFound("4"), 17)
	require.Equal(t, 9, h.Len())
	requireHistoryResult(t, h, porcupine.Ok)
}

func TestCheckRejectsStaleReadAfterAcknowledgedWrite(t *testing.T) {
	t.Run("old value", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 0, putIn("x", "2"), 2, outDone, 3)
		addHistoryOp(h, 1, getIn("x"), 4, outFound("1"), 5)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
	t.Run("absent", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, getIn("x"), 2, outAbsent, 3)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
}

func TestCheckAcceptsConcurrentOpsInEitherOrder(t *testing.T) {
	for _, read := range []Output{outAbsent, outFound("1")} {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 10)
		addHistoryOp(h, 1, getIn("x"), 5, read, 15)
		requireHistoryResult(t, h, porcupine.Ok)
	}
	for _, last := range []string{"a", "b"} {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "a"), 0, outDone, 10)
		addHistoryOp(h, 1, putIn("x", "b"), 5, outDone, 12)
		addHistoryOp(h, 2, getIn("x"), 20, outFound(last), 21)
		addHistoryOp(h, 2, getIn("x"), 22, outFound(last), 23)
		requireHistoryResult(t, h, porcupine.Ok)
	}
	// Touching endpoints are concurrent: intervals are closed.
	h := &History{}
	addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 10)
	addHistoryOp(h, 1, getIn("x"), 10, outAbsent, 11)
	requireHistoryResult(t, h, porcupine.Ok)
}

func TestCheckRejectsConditionalWriteWithWrongVerdict(t *testing.T) {
	cases := map[string][]Input{
		"cas claims success on mismatch": {putIn("x", "a"), casIn("x", "b", "c")},
		"cas claims success on absent":   {casIn("x", "", "c")},
		"putIfAbsent claims success":     {putIn("x", "a"), putIfAbsentIn("x", "c")},
	}
	for name, ins := range cases {
		t.Run(name, func(t *testing.T) {
			h := &History{}
			for i, in := range ins[:len(ins)-1] {
				addHistoryOp(h, 0, in, int64(2*i), outDone, int64(2*i+1))
			}
			addHistoryOp(h, 0, ins[len(ins)-1], 100, outSwapped, 101)
			requireHistoryResult(t, h, porcupine.Illegal)
		})
	}
	t.Run("cas claims failure on match", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "a"), 0, outDone, 1)
		addHistoryOp(h, 0, casIn("x", "a", "c"), 2, outRejected, 3)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
	t.Run("putIfAbsent claims failure on absent", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIfAbsentIn("x", "a"), 0, outRejected, 1)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
	t.Run("failed cas changes nothing", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "a"), 0, outDone, 1)
		addHistoryOp(h, 0, casIn("x", "b", "c"), 2, outRejected, 3)
		addHistoryOp(h, 0, getIn("x"), 4, outFound("c"), 5)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
}

func TestCheckAllowsUnknownPutEitherWay(t *testing.T) {
	for _, read := range []Output{outFound("1"), outFound("2")} {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, putIn("x", "2"), 2, outUnknown, 3)
		addHistoryOp(h, 0, getIn("x"), 4, read, 5)
		addHistoryOp(h, 0, getIn("x"), 6, read, 7)
		requireHistoryResult(t, h, porcupine.Ok)
	}
}

func TestCheckRejectsReadsThatSeeUnknownPutThenUnseeIt(t *testing.T) {
	h := &History{}
	addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
	addHistoryOp(h, 1, putIn("x", "2"), 2, outUnknown, 3)
	addHistoryOp(h, 0, getIn("x"), 4, outFound("2"), 5)
	addHistoryOp(h, 0, getIn("x"), 6, outFound("1"), 7)
	requireHistoryResult(t, h, porcupine.Illegal)
}

// A client that gives up on a request has not stopped it: the request may
// still be executed later, so an unknown op must stay open to the end.
func TestCheckLetsUnknownOpTakeEffectAfterClientGaveUp(t *testing.T) {
	h := &History{}
	addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
	addHistoryOp(h, 1, putIn("x", "2"), 2, outUnknown, 3)
	addHistoryOp(h, 0, getIn("x"), 4, outFound("1"), 5)
	addHistoryOp(h, 0, getIn("x"), 6, outFound("2"), 7)
	requireHistoryResult(t, h, porcupine.Ok)
}

func TestCheckTreatsNeverCompletedOpAsUnknown(t *testing.T) {
	build := func(reads ...Output) *History {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		h.Invoke(1, putIn("x", "2"), 2)
		for i, read := range reads {
			addHistoryOp(h, 0, getIn("x"), int64(4+2*i), read, int64(5+2*i))
		}
		return h
	}
	requireHistoryResult(t, build(outFound("1")), porcupine.Ok)
	requireHistoryResult(t, build(outFound("2")), porcupine.Ok)
	requireHistoryResult(t, build(outFound("1"), outFound("2")), porcupine.Ok)
	requireHistoryResult(t, build(outFound("2"), outFound("1")), porcupine.Illegal)

	ops := build(outFound("1"), outFound("2")).Operations()
	require.Len(t, ops, 4)
	pending := ops[1]
	require.Equal(t, Output{Unknown: true}, pending.Output)
	for _, op := range ops {
		require.Greater(t, pending.Return, op.Call)
		if op.Return != pending.Return {
			require.Greater(t, pending.Return, op.Return)
		}
	}
}

func TestOperationsReportsUnknownOutcomeAsUnknownAtEnd(t *testing.T) {
	h := &History{}
	id := h.Invoke(3, putIn("x", "1"), 0)
	h.Complete(id, Output{Unknown: true, Swapped: true}, 1)
	addHistoryOp(h, 0, getIn("x"), 2, outFound("1"), 9)

	ops := h.Operations()
	require.Len(t, ops, 2)
	require.Equal(t, 3, ops[0].ClientId)
	require.Equal(t, putIn("x", "1"), ops[0].Input)
	require.Equal(t, Output{Unknown: true}, ops[0].Output)
	require.Equal(t, int64(10), ops[0].Return)
	require.Equal(t, porcupine.Operation{ClientId: 0, Input: getIn("x"), Call: 2, Output: outFound("1"), Return: 9}, ops[1])
}

func TestCheckUnknownCASFollowsModelVerdict(t *testing.T) {
	t.Run("matching cas may swap", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, casIn("x", "1", "2"), 2, outUnknown, 3)
		addHistoryOp(h, 0, getIn("x"), 4, outFound("2"), 5)
		requireHistoryResult(t, h, porcupine.Ok)
	})
	t.Run("mismatched cas cannot swap", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, casIn("x", "5", "2"), 2, outUnknown, 3)
		addHistoryOp(h, 0, getIn("x"), 4, outFound("2"), 5)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
	t.Run("putIfAbsent on present key cannot swap", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, putIfAbsentIn("x", "2"), 2, outUnknown, 3)
		addHistoryOp(h, 0, getIn("x"), 4, outFound("2"), 5)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
}

func TestCheckKeysIndependently(t *testing.T) {
	t.Run("writes to one key are invisible to another", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("a", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, getIn("b"), 2, outAbsent, 3)
		addHistoryOp(h, 1, getIn("b"), 4, outFound("1"), 5)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
	t.Run("each key is its own partition", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("a", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, putIn("b", "2"), 0, outDone, 1)
		addHistoryOp(h, 0, getIn("a"), 2, outFound("1"), 3)
		addHistoryOp(h, 1, getIn("b"), 2, outFound("2"), 3)
		parts := KVModel.Partition(h.Operations())
		require.Len(t, parts, 2)
		for i, key := range []string{"a", "b"} {
			require.Len(t, parts[i], 2)
			for _, op := range parts[i] {
				require.Equal(t, key, op.Input.(Input).Key)
			}
		}
		info := requireHistoryResult(t, h, porcupine.Ok)
		require.Len(t, info.PartialLinearizations(), 2)
	})
	t.Run("violation on one key is found beside a correct key", func(t *testing.T) {
		h := &History{}
		addHistoryOp(h, 0, putIn("a", "1"), 0, outDone, 1)
		addHistoryOp(h, 0, getIn("a"), 2, outFound("1"), 3)
		addHistoryOp(h, 1, putIn("b", "1"), 0, outDone, 1)
		addHistoryOp(h, 1, getIn("b"), 2, outAbsent, 3)
		requireHistoryResult(t, h, porcupine.Illegal)
	})
}

func TestCompletePanicsOnCallerBugs(t *testing.T) {
	h := &History{}
	id := h.Invoke(0, getIn("x"), 5)
	require.Panics(t, func() { h.Complete(id+1, outDone, 6) }, "unknown id")
	require.Panics(t, func() { h.Complete(id, outDone, 4) }, "return before call")
	h.Complete(id, outAbsent, 6)
	require.Panics(t, func() { h.Complete(id, outAbsent, 7) }, "completed twice")
}

func TestWriteVisualizationWritesHTML(t *testing.T) {
	for name, legal := range map[string]bool{"legal": true, "illegal": false} {
		t.Run(name, func(t *testing.T) {
			h := &History{}
			addHistoryOp(h, 0, putIn("x", "1"), 0, outDone, 1)
			addHistoryOp(h, 1, casIn("x", "1", "2"), 2, outSwapped, 3)
			h.Invoke(2, putIfAbsentIn("y", "1"), 2)
			read := outFound("2")
			if !legal {
				read = outFound("1")
			}
			addHistoryOp(h, 0, getIn("x"), 4, read, 5)
			ok, _, info := h.Check(historyCheckTimeout)
			require.Equal(t, legal, ok)

			path := filepath.Join(t.TempDir(), "history.html")
			require.NoError(t, WriteVisualization(path, info))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NotEmpty(t, b)
			require.True(t, strings.HasPrefix(strings.ToLower(string(b)), "<!doctype html>"))
			require.Contains(t, string(b), `cas(\"x\", \"1\"→\"2\") → swapped`)
		})
	}
}

func TestWriteVisualizationReportsUnwritablePath(t *testing.T) {
	_, _, info := (&History{}).Check(historyCheckTimeout)
	err := WriteVisualization(filepath.Join(t.TempDir(), "missing", "h.html"), info)
	require.Error(t, err)
}

func TestKVModelDescribesOpsReadably(t *testing.T) {
	cases := map[string]struct {
		in  Input
		out Output
	}{
		`put("k", "v")`:                       {putIn("k", "v"), outDone},
		`get("k") → "v"`:                      {getIn("k"), outFound("v")},
		`get("k") → absent`:                   {getIn("k"), outAbsent},
		`get("k") → ?`:                        {getIn("k"), outUnknown},
		`cas("k", "a"→"b") → not swapped`:     {casIn("k", "a", "b"), outRejected},
		`putIfAbsent("k", "v") → swapped`:     {putIfAbsentIn("k", "v"), outSwapped},
		`putIfAbsent("k", "v") → not swapped`: {putIfAbsentIn("k", "v"), outRejected},
	}
	for want, c := range cases {
		require.Equal(t, want, KVModel.DescribeOperation(c.in, c.out))
	}
	require.Equal(t, "absent", KVModel.DescribeState(KVModel.Init()))
}
