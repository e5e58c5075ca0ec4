//go:build unix

package clustertest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// access is one phone's sync as seen from one warning: a write (the sync
// pushed ops on it, the new version is what the phone holds after the
// sync) or a read (it pulled and holds the version it read).
//
// A sync pushes then pulls, in one call. As a write it is a push whose
// answer's version the pull confirms: each warning has one writer, its
// village's phone (the feed assigned it to the village's one cadre), so
// nothing else can change the warning between the push and the pull. A
// failed sync may have landed its ops; the next one that succeeds sends
// them again (duplicates, with the first answer), so the write spans both.
type access struct {
	warning string
	write   bool
}

// versionModel is a warning's version as a register: a write sets a newer
// version (the log seq of the entry that changed it), a read returns the
// version there is. A phone that failed over must never read an older
// version than one it was answered (a write lost or a node behind), nor
// miss a version, nor see one jump without a write.
var versionModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byWarning := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			w := op.Input.(access).warning
			if _, ok := byWarning[w]; !ok {
				order = append(order, w)
			}
			byWarning[w] = append(byWarning[w], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, w := range order {
			out = append(out, byWarning[w])
		}
		return out
	},
	// The state before the history is unknown (the feed made it): the
	// first read or write sets it.
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		cur, got := state.(uint64), output.(uint64)
		if input.(access).write {
			return got > cur, got
		}
		return cur == 0 || got == cur, got
	},
	DescribeOperation: func(input, output any) string {
		in := input.(access)
		if in.write {
			return fmt.Sprintf("push %s -> v%d", in.warning[:8], output)
		}
		return fmt.Sprintf("pull %s = v%d", in.warning[:8], output)
	},
}

// checkLinearizable checks the phones' history with porcupine and, when
// it is not linearizable, writes porcupine's picture of it beside the
// test's logs.
func checkLinearizable(t *testing.T, phones []*phone, logDir string) {
	t.Helper()
	var history []porcupine.Operation
	for _, p := range phones {
		history = append(history, p.history...)
	}
	res, info := porcupine.CheckOperationsVerbose(versionModel, history, time.Minute)
	t.Logf("porcupine: %d accesses of %d warnings: %s", len(history), len(phones)*len(phones[0].warnings), res)
	if res == porcupine.Ok {
		return
	}
	path := filepath.Join(logDir, "history.html")
	if f, err := os.Create(path); err == nil {
		if err := porcupine.Visualize(versionModel, info, f); err != nil {
			t.Logf("visualize: %v", err)
		}
		f.Close()
	}
	t.Errorf("the history of acknowledged pushes and pulls is %s for the warnings' versions (see %s)", res, path)
}

// TestVersionModel: the model tells a history a cluster may give from
// those it must not: a write lost after a failover, a node behind serving
// an older version, a version that changes without a write.
func TestVersionModel(t *testing.T) {
	const w = "0195e3a0-warning"
	push := func(call, ret int64, v uint64) porcupine.Operation {
		return porcupine.Operation{Input: access{warning: w, write: true}, Call: call, Output: v, Return: ret}
	}
	pull := func(call, ret int64, v uint64) porcupine.Operation {
		return porcupine.Operation{Input: access{warning: w}, Call: call, Output: v, Return: ret}
	}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"pushes and pulls in order", []porcupine.Operation{pull(0, 1, 3), push(2, 3, 5), pull(4, 5, 5), push(6, 7, 9), pull(8, 9, 9)}, true},
		{"a pull during a push sees either version", []porcupine.Operation{pull(0, 1, 3), push(2, 6, 5), pull(3, 4, 3), pull(5, 7, 5)}, true},
		{"an acknowledged push lost", []porcupine.Operation{pull(0, 1, 3), push(2, 3, 5), pull(4, 5, 3)}, false},
		{"a node behind after a failover", []porcupine.Operation{push(0, 1, 5), push(2, 3, 9), pull(4, 5, 5)}, false},
		{"a version with no push", []porcupine.Operation{pull(0, 1, 3), pull(2, 3, 4)}, false},
		{"a push that does not move the version on", []porcupine.Operation{pull(0, 1, 5), push(2, 3, 5)}, false},
	} {
		if got := porcupine.CheckOperations(versionModel, tc.history); got != tc.ok {
			t.Errorf("%s: linearizable %v, want %v", tc.name, got, tc.ok)
		}
	}
}
