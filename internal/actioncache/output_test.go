//go:build unix

package actioncache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// takeAll returns the batches of writes, taking one (as the ticker
// would) wherever writes holds "|".
func takeAll(writes ...string) []OutputBatch {
	s := newOutputSink(&bytes.Buffer{}, func(OutputBatch) {})
	var out []OutputBatch
	for _, w := range writes {
		if w == "|" {
			if b, ok := s.take(false); ok {
				out = append(out, b)
			}
			continue
		}
		_, _ = s.Write([]byte(w))
	}
	if b, ok := s.take(true); ok {
		out = append(out, b)
	}
	return out
}

// numbered returns the lines "from" to "to-1".
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintln(&b, i)
	}
	return b.String()
}

func TestOutputBatches(t *testing.T) {
	lines := func(n int, s string) string { return strings.Repeat(s+"\n", n) }
	many := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	for name, tc := range map[string]struct {
		writes []string
		want   []OutputBatch
	}{
		"a line across writes waits for its newline": {[]string{"ab", "c\nd", "|", "e\r\n"},
			[]OutputBatch{{Lines: []string{"abc"}, Bytes: 5}, {Lines: []string{"de"}, Bytes: 3}}},
		"the last line needs no newline":    {[]string{"a\n", "b"}, []OutputBatch{{Lines: []string{"a", "b"}, Bytes: 3}}},
		"empty lines are lines":             {[]string{"\n\n"}, []OutputBatch{{Lines: []string{"", ""}, Bytes: 2}}},
		"nothing printed, nothing reported": {[]string{"|", "|"}, nil},
		"a long line is cut": {[]string{strings.Repeat("x", 300), strings.Repeat("x", 300), "\n"},
			[]OutputBatch{{Lines: []string{strings.Repeat("x", shownLine) + "…"}, Bytes: 601}}},
		"past batchLines, lines are counted": {[]string{lines(batchLines+50, "n")},
			[]OutputBatch{{Lines: many(batchLines, "n"), More: 50, Bytes: 2 * (batchLines + 50)}}},
		"past batchBytes, lines are counted": {[]string{lines(40, strings.Repeat("w", 450))},
			[]OutputBatch{{Lines: many(batchBytes/450+1, strings.Repeat("w", 450)), More: 40 - (batchBytes/450 + 1), Bytes: 40 * 451}}},
		"the last lines are shown": {[]string{numbered(0, batchLines+50)},
			[]OutputBatch{{Lines: strings.Fields(numbered(50, batchLines+50)), More: 50, Bytes: int64(len(numbered(0, batchLines+50)))}}},
		// A line being printed when a batch is taken is in the next.
		"a batch taken mid-line": {[]string{"a\npar", "|", "tial\nnext\n"},
			[]OutputBatch{{Lines: []string{"a"}, Bytes: 5}, {Lines: []string{"partial", "next"}, Bytes: 10}}},
		"the end mid-line": {[]string{"a\npar", "|", "tial"},
			[]OutputBatch{{Lines: []string{"a"}, Bytes: 5}, {Lines: []string{"partial"}, Bytes: 4}}},
		// Lines no longer kept when the batch is taken are counted.
		"a line longer than what is kept": {[]string{"x\n" + strings.Repeat("a", 3*keptBytes), "|", "\n"},
			[]OutputBatch{{More: 1, Bytes: 2 + 3*keptBytes}, {Lines: []string{"…" + strings.Repeat("a", shownLine) + "…"}, Bytes: 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			got := takeAll(tc.writes...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// Whatever the chunks and the moments batches are taken, every line is
// accounted for once (shown or counted) and every byte once.
func TestOutputBatchesAccountForEverything(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var text strings.Builder
		for range r.IntN(2000) {
			text.WriteString(strings.Repeat("z", r.IntN(r.IntN(700)+1)))
			text.WriteByte('\n')
		}
		if r.IntN(2) == 0 {
			text.WriteString("unterminated")
		}
		all := text.String()
		var writes []string
		for rest := all; rest != ""; {
			n := min(len(rest), 1+r.IntN(3000))
			writes = append(writes, rest[:n])
			rest = rest[n:]
			if r.IntN(4) == 0 {
				writes = append(writes, "|")
			}
		}
		var nLines, nBytes int64
		for _, b := range takeAll(writes...) {
			nLines += int64(len(b.Lines)) + b.More
			nBytes += b.Bytes
			if len(b.Lines) > batchLines {
				t.Fatalf("case %d: a batch of %d lines", i, len(b.Lines))
			}
		}
		want := int64(strings.Count(all, "\n"))
		if !strings.HasSuffix(all, "\n") && all != "" {
			want++
		}
		if nLines != want || nBytes != int64(len(all)) {
			t.Fatalf("case %d: %d lines and %d bytes accounted for, want %d and %d", i, nLines, nBytes, want, len(all))
		}
	}
}

// A batch, and a piece of a failed step's output, is one provider log
// entry, which Terraform reads as a line of at most 64 KiB: it must stay
// below that in JSON, every byte escaped.
func TestABatchFitsALogEntry(t *testing.T) {
	worst := strings.Repeat(strings.Repeat("\x1b", shownLine+100)+"\n", 2*batchLines)
	fits := func(what, text string) {
		j, _ := json.Marshal(text)
		if len(j) > 60<<10 {
			t.Fatalf("%s is %d bytes in JSON", what, len(j))
		}
	}
	for _, b := range takeAll(worst) {
		fits("a batch", strings.Join(b.Lines, "\n"))
	}
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte(worst), 0o600); err != nil {
		t.Fatal(err)
	}
	replay(p, func(piece []byte, _, _ int64) { fits("a piece", string(piece)) })
}

func TestOutputTail(t *testing.T) {
	for name, tc := range map[string]struct {
		writes []string
		want   []string
	}{
		"nothing":         {nil, nil},
		"the last lines":  {[]string{"a\n", "b\r\nc"}, []string{"a", "b", "c"}},
		"at most twenty":  {[]string{strings.Repeat("l\n", 30), "last\n"}, append(slices.Repeat([]string{"l"}, tailLines-1), "last")},
		"a long line cut": {[]string{strings.Repeat("é", 400) + "\n"}, []string{strings.Repeat("é", shownLine/2) + "…"}},
		// Fewer than twenty lines in the kept end: the first is cut at
		// its start.
		"long lines": {[]string{strings.Repeat("a", 3*keptBytes), "\nb\n"}, []string{"…" + strings.Repeat("a", shownLine) + "…", "b"}},
		// Terminal escape sequences are dropped; what would not print as
		// itself is shown escaped, tabs kept.
		"colors":             {[]string{"\x1b[1;31merror:\x1b[0m bad\x1b[K\n"}, []string{"error: bad"}},
		"a title and a link": {[]string{"\x1b]0;pwned\x07x \x1b]8;;http://a\x1b\\link\x1b]8;;\x1b\\\n"}, []string{"x link"}},
		"controls":           {[]string{"a\x00b\x1b(c\xffd\u202Ee\tf\x1b[\r\n"}, []string{`a\u0000b\u001B(c\xFFd\u202Ee` + "\tf" + `\u001B[`}},
		"a carriage return":  {[]string{"10%\r100%\n"}, []string{`10%\r100%`}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newOutputSink(&bytes.Buffer{}, nil)
			for _, w := range tc.writes {
				_, _ = s.Write([]byte(w))
			}
			if got := s.tail(); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A step printing 16 MiB of short lines (8 Mi lines) makes a few Output
// calls, not one per line — each was a provider log call, which made such
// a step take 20 s more than writing the same bytes to a file — while the
// log stored is whole and every line is accounted for.
func TestManyLinesAreReportedInBatches(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	const size = 16 << 20
	j := job(t, "yes | head -c "+fmt.Sprint(size)+"; echo done; mkdir out", nil, "out", "yes", "head", "mkdir")
	var mu sync.Mutex
	var batches []OutputBatch
	j.Output = func(b OutputBatch) {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, b)
	}
	j.Failed = func([]byte, int64, int64) { t.Error("the output of a step that succeeded was given to Failed") }
	start := time.Now()
	res, err := Run(ctx, st, j)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// One a tick while it ran, and the last.
	if limit := int(elapsed/OutputEvery) + 2; len(batches) > limit {
		t.Fatalf("%d Output calls in %s; at most %d expected (one every %s, and the last)", len(batches), elapsed, limit, OutputEvery)
	}
	var lines int64
	for _, b := range batches {
		lines += int64(len(b.Lines)) + b.More
	}
	last := batches[len(batches)-1].Lines
	if lines != size/2+1 || batches[0].Lines[0] != "y" || last[len(last)-1] != "done" {
		t.Fatalf("%d lines accounted for (want %d); first batch starts %q, last ends %q", lines, size/2+1, batches[0].Lines[0], last[len(last)-1])
	}
	want := digest.Bytes(append(bytes.Repeat([]byte("y\n"), size/2), "done\n"...))
	if res.Record.Log != want {
		t.Fatalf("the stored log is %s, not the %s of the whole output", res.Record.Log, want)
	}
	t.Logf("%d Output calls in %s", len(batches), elapsed)
}

// A failing step's error ends with its last lines, however much it
// printed before them.
func TestTheTailOfALongOutputIsInTheError(t *testing.T) {
	st := newStore(t)
	j := job(t, "yes | head -c 8388608; echo last; exit 2", nil, "out", "yes", "head")
	_, err := Run(context.Background(), st, j)
	var e *ExitError
	if !errors.As(err, &e) || len(e.Tail) != tailLines || e.Tail[tailLines-1] != "last" || e.Tail[0] != "y" {
		t.Fatalf("got %v", err)
	}
}

// A failed step stores no log: its whole output goes to Job.Failed, in
// pieces of whole lines, a few per MiB.
func TestAFailedStepGivesItsWholeOutput(t *testing.T) {
	st := newStore(t)
	j := job(t, "head -c 150000 /dev/zero | tr '\\0' a; echo; seq 100000; printf end; exit 1", nil, "out", "head", "tr", "seq")
	var got bytes.Buffer
	calls := 0
	j.Failed = func(piece []byte, offset, total int64) {
		calls++
		if offset != int64(got.Len()) || len(piece) > failedPiece || total != 150001+int64(len(numbered(1, 100001)))+3 {
			t.Errorf("piece %d: %d bytes at %d of %d, after %d bytes", calls, len(piece), offset, total, got.Len())
		}
		got.Write(piece)
		// A piece ends at a newline, unless a line does not fit in it.
		if bytes.IndexByte(piece, '\n') >= 0 && !bytes.HasSuffix(piece, []byte("\n")) && !bytes.HasSuffix(piece, []byte("end")) {
			t.Errorf("piece %d ends inside a line: %q", calls, piece[max(0, len(piece)-20):])
		}
	}
	_, err := Run(context.Background(), st, j)
	var e *ExitError
	if !errors.As(err, &e) {
		t.Fatalf("got %v", err)
	}
	want := strings.Repeat("a", 150000) + "\n" + numbered(1, 100001) + "end"
	if got.String() != want {
		t.Fatalf("Failed got %d bytes, not the %d of the output", got.Len(), len(want))
	}
	if most := len(want)/failedPiece + 3; calls > most {
		t.Fatalf("%d calls for %d bytes", calls, len(want))
	}
}

// Of a failed step that printed more than FailedOutput, Job.Failed gets
// the end, from the start of a line.
func TestAFailedStepGivesTheEndOfALongOutput(t *testing.T) {
	st := newStore(t)
	const size = FailedOutput + 4<<20
	j := job(t, fmt.Sprintf("yes | head -c %d; echo last; exit 1", size), nil, "out", "yes", "head")
	var got bytes.Buffer
	var first, total int64 = -1, 0
	j.Failed = func(piece []byte, offset, all int64) {
		if first < 0 {
			first = offset
		}
		total = all
		got.Write(piece)
	}
	_, err := Run(context.Background(), st, j)
	if !errors.As(err, new(*ExitError)) {
		t.Fatalf("got %v", err)
	}
	if total != size+5 || first != total-int64(got.Len()) || first < total-FailedOutput || first%2 != 0 ||
		!strings.HasSuffix(got.String(), "y\nlast\n") || strings.Trim(got.String(), "y\nlast") != "" {
		t.Fatalf("Failed got %d bytes from %d of %d", got.Len(), first, total)
	}
}

// BenchmarkRunOutput runs a step printing 16 MiB and 64 MiB of short lines
// to its output, against the same bytes written to a file:
//
//	go test -run '^$' -bench RunOutput -benchtime 3x ./internal/actioncache/
func BenchmarkRunOutput(b *testing.B) {
	for _, size := range []int{16 << 20, 64 << 20} {
		for _, to := range []string{"stdout", "file"} {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, to), func(b *testing.B) {
				script := fmt.Sprintf("mkdir out; yes | head -c %d", size)
				if to == "file" {
					script += " > out/f"
				}
				j := job(b, script, nil, "out", "yes", "head", "mkdir")
				calls := 0
				j.Output = func(OutputBatch) { calls++ }
				b.SetBytes(int64(size))
				for b.Loop() {
					st, err := filestore.New(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Run(context.Background(), store.New(st), j); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			})
		}
	}
}
