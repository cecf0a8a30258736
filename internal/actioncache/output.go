package actioncache

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// OutputBatch is what a command printed since the last batch, for a
// progress log: its last lines, and how much more there was. The whole
// output is in the stored log; a batch only shows that the step is alive
// and where it is. A command printing millions of lines makes one batch a
// second, not a call per line.
type OutputBatch struct {
	// Lines are the last lines completed since the last batch (at most
	// batchLines and about batchBytes, each cut at shownLine bytes),
	// without their newline.
	Lines []string
	// More counts the lines completed since the last batch that are not
	// in Lines: printed before them.
	More int64
	// Bytes counts every byte printed since the last batch (a line still
	// being printed included).
	Bytes int64
}

// OutputEvery is how often a running command's output is reported: one
// Job.Output call per interval at most, and a last one when it ends.
const OutputEvery = time.Second

// Bounds of what a batch and an error show. A batch is one log entry, and
// Terraform and OpenTofu read a provider's log entries as lines of at most
// 64 KiB (go-plugin's buffer; a longer one is dropped at INFO): 8 KiB of
// text stays below that even with every byte escaped in JSON (\u001b, six
// bytes).
const (
	batchLines = 100      // lines in a batch
	batchBytes = 8 << 10  // bytes of lines in a batch, about (plus one line)
	shownLine  = 500      // bytes of one line, in a batch or an error
	tailLines  = 20       // last lines an error shows
	keptBytes  = 64 << 10 // of the end of the output, for both
)

// outputSink keeps a command's output: all of it in the log file, and its
// end in memory, for errors and Job.Output's batches. Its cost per byte is
// a copy and a count, not an allocation per line: a step may print
// gigabytes.
type outputSink struct {
	file io.Writer
	out  func(OutputBatch)
	done chan struct{} // closed when the reader has stopped

	mu       sync.Mutex
	err      error  // the first failure to write the log
	total    int64  // bytes printed
	newlines int64  // lines completed
	lineEnd  int64  // the offset after the last newline
	last     []byte // the end of the output: keptBytes, up to twice that
	// Where the last batch ended: its lines, up to the offset lineOff,
	// and its bytes.
	lineOff, lines, taken int64
}

func newOutputSink(file io.Writer, out func(OutputBatch)) *outputSink {
	return &outputSink{file: file, out: out, done: make(chan struct{})}
}

func (s *outputSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.file.Write(p); err != nil && s.err == nil {
		s.err = err
	}
	s.total += int64(len(p))
	if n := bytes.Count(p, []byte{'\n'}); n > 0 {
		s.newlines += int64(n)
		s.lineEnd = s.total - int64(len(p)-bytes.LastIndexByte(p, '\n')-1)
	}
	if len(p) >= keptBytes {
		s.last = append(s.last[:0], p[len(p)-keptBytes:]...)
	} else if s.last = append(s.last, p...); len(s.last) > 2*keptBytes {
		s.last = s.last[:copy(s.last, s.last[len(s.last)-keptBytes:])]
	}
	return len(p), nil
}

// lastLines splits the output from the offset from to the offset to (a
// newline ending it ends the last line) into lines, and returns at most n
// of the last, about size bytes, as far as they are kept. A line begun
// before what is kept is shown from "…".
func (s *outputSink) lastLines(from, to int64, n, size int) []string {
	start := s.total - int64(len(s.last)) // the offset of last[0]
	if to <= start {
		return nil
	}
	seg := bytes.TrimSuffix(s.last[max(from, start)-start:to-start], []byte{'\n'})
	parts := bytes.Split(seg, []byte{'\n'})
	var lines []string
	shown := 0
	for i := len(parts) - 1; i >= 0 && len(lines) < n && shown < size; i-- {
		l := shorten(parts[i])
		shown += len(l)
		lines = append(lines, l)
	}
	slices.Reverse(lines)
	if from < start && len(lines) == len(parts) { // parts[0] is the end of a longer line
		lines[0] = "…" + lines[0]
	}
	return lines
}

// shorten makes a line as shown: without a carriage return at its end
// or terminal escape sequences (colors, cursor moves, a window title), cut
// at shownLine bytes (a character cut in two is dropped), and with every
// character left that would not print as itself written as an escape
// (\u001B, \xFF, \u202E): a step's output is printed in Terraform's
// error, where a raw escape sequence could clear the screen or rewrite
// the lines above it, and a byte that is not UTF-8 would be lost.
func shorten(l []byte) string {
	l = stripEscapes(bytes.TrimSuffix(l, []byte{'\r'}))
	if len(l) > shownLine {
		return usertext.Escape(strings.ToValidUTF8(string(l[:shownLine]), "")) + "…"
	}
	return usertext.Escape(string(l))
}

// stripEscapes returns l without its ANSI escape sequences: CSI (ESC [,
// parameters, intermediates, a final byte: colors, cursor moves, erasing)
// and OSC (ESC ], up to BEL or ESC \: a title, a hyperlink's target). Any
// other escape stays, to be shown escaped.
func stripEscapes(l []byte) []byte {
	if bytes.IndexByte(l, 0x1b) < 0 {
		return l
	}
	out := make([]byte, 0, len(l))
	for i := 0; i < len(l); {
		if n := escapeLen(l[i:]); n > 0 {
			i += n
			continue
		}
		out = append(out, l[i])
		i++
	}
	return out
}

// escapeLen is the length of the CSI or OSC sequence at the start of p, or
// 0 if there is none there, complete.
func escapeLen(p []byte) int {
	if len(p) < 2 || p[0] != 0x1b {
		return 0
	}
	switch p[1] {
	case '[':
		i := 2
		for i < len(p) && p[i] >= 0x30 && p[i] <= 0x3f {
			i++
		}
		for i < len(p) && p[i] >= 0x20 && p[i] <= 0x2f {
			i++
		}
		if i < len(p) && p[i] >= 0x40 && p[i] <= 0x7e {
			return i + 1
		}
	case ']':
		for i := 2; i < len(p); i++ {
			switch {
			case p[i] == 0x07:
				return i + 1
			case p[i] == 0x1b && i+1 < len(p) && p[i+1] == '\\':
				return i + 2
			}
		}
	}
	return 0
}

// take returns the batch printed since the last (ok false when nothing
// was) and starts the next. With end, a last line without a newline is a
// line; otherwise it waits for its newline, in a later batch.
func (s *outputSink) take(end bool) (OutputBatch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	to, lines := s.lineEnd, s.newlines
	if end && s.total > s.lineEnd {
		to, lines = s.total, lines+1
	}
	b := OutputBatch{Bytes: s.total - s.taken}
	if to > s.lineOff {
		b.Lines = s.lastLines(s.lineOff, to, batchLines, batchBytes)
	}
	b.More = lines - s.lines - int64(len(b.Lines))
	s.lineOff, s.lines, s.taken = to, lines, s.total
	return b, b.Bytes > 0 || len(b.Lines) > 0
}

// readFrom copies r into the sink until it ends (or fails), reporting a
// batch every OutputEvery; wait waits for that, then reports the last.
func (s *outputSink) readFrom(r io.Reader) {
	defer close(s.done)
	stop := make(chan struct{})
	reported := make(chan struct{})
	if s.out != nil {
		go func() {
			defer close(reported)
			t := time.NewTicker(OutputEvery) // paces log lines only
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if b, ok := s.take(false); ok {
						s.out(b)
					}
				}
			}
		}()
	} else {
		close(reported)
	}
	_, _ = io.Copy(s, r) // ends at EOF, or at the read deadline
	close(stop)
	<-reported // a batch under way is reported before the last one
}

func (s *outputSink) wait() {
	<-s.done
	if s.out == nil {
		return
	}
	if b, ok := s.take(true); ok {
		s.out(b)
	}
}

// writeErr is the first failure to write the log (after wait).
func (s *outputSink) writeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// tail returns the last lines of the output, as an error shows them.
func (s *outputSink) tail() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total == 0 {
		return nil
	}
	return s.lastLines(0, s.total, tailLines, math.MaxInt)
}
