package actioncache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// Tool is a declared program: where it was found, and its content digest.
type Tool struct {
	Path string
	Sum  digest.Sum
}

// FindTool resolves a program name on PATH (the provider's own) and
// hashes the binary it names, following symlinks: the content joins the
// key, the path does not. hash hashes a file (the provider passes its
// stat cache).
func FindTool(ctx context.Context, name string, hash func(ctx context.Context, path string) (digest.Sum, int64, error)) (Tool, error) {
	p, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		return Tool{}, fmt.Errorf("%q was found only through a relative directory on PATH (%s), which is refused: what it names depends on the directory Terraform runs in. Put the tool's absolute directory on PATH", name, p)
	}
	if err != nil {
		return Tool{}, &ToolNotFoundError{Name: name, Path: os.Getenv("PATH")}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Tool{}, err
	}
	target, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Tool{}, err
	}
	sum, _, err := hash(ctx, target)
	if err != nil {
		return Tool{}, fmt.Errorf("hashing %s (%q on PATH): %w", target, name, err)
	}
	return Tool{Path: abs, Sum: sum}, nil
}

// ToolNotFoundError is a declared tool not on PATH.
type ToolNotFoundError struct{ Name, Path string }

func (e *ToolNotFoundError) Error() string {
	return fmt.Sprintf("%q was not found on PATH (%s): install it, or put its directory on the PATH Terraform runs with", e.Name, e.Path)
}

// Job is one run of a step.
type Job struct {
	Spec    Spec
	Tools   map[string]Tool // as resolved at plan; checked again before the run
	Timeout time.Duration
	// Hash hashes a tool's binary (see FindTool).
	Hash func(ctx context.Context, path string) (digest.Sum, int64, error)
	// Output receives what the command prints while it runs, in batches
	// (see OutputBatch): never a call per line.
	Output func(OutputBatch)
	// Failed, when set, receives the output of a command that failed
	// (whose log is not stored: nothing is recorded), all of it or its
	// last FailedOutput bytes, in pieces of whole lines of at most
	// failedPiece bytes, from offset, of total.
	Failed func(piece []byte, offset, total int64)
	// TempDir holds the build's fresh directory ("" = the system's).
	TempDir string
	// Caches maps variables to persistent directories (created if
	// missing) kept between runs, outside the key: for tools whose own
	// caches are keyed by content (Go's build cache, ccache), which make a
	// run faster without changing what it produces.
	Caches map[string]string
}

// Result is what a successful run stored.
type Result struct {
	Record  Record
	Listing *digest.Listing // the output's listing, for a tree
}

// ExitError is a command that failed; nothing was recorded.
type ExitError struct {
	Status string // "exit status 2", "signal: killed"
	Tail   []string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("the command failed (%s); nothing was recorded. Last lines of its output:\n%s", e.Status, tail(e.Tail))
}

// TimeoutError is a command that ran past its timeout: its whole process
// group was killed, and nothing was recorded.
type TimeoutError struct {
	Timeout time.Duration
	Tail    []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the command did not finish within %s; its whole process group was killed and nothing was recorded. Last lines of its output:\n%s", e.Timeout, tail(e.Tail))
}

func tail(lines []string) string {
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}

// OutputError is a command that succeeded without leaving a usable output.
type OutputError struct {
	Output string
	What   string
	Tail   []string
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("the command exited 0 but the output %q %s; nothing was recorded. Last lines of its output:\n%s", e.Output, e.What, tail(e.Tail))
}

// ToolChangedError is a tool whose binary changed between plan and apply.
type ToolChangedError struct {
	Name, Path string
	Want, Got  digest.Sum
}

func (e *ToolChangedError) Error() string {
	return fmt.Sprintf("the tool %q (%s) hashes to %s now, not %s as planned: it changed between plan and apply. Nothing was run; plan again", e.Name, e.Path, e.Got, e.Want)
}

// Run runs the job in a fresh directory holding only its inputs (read
// from the store, verified, read-only), with only the declared variables
// and tools, and stores its output (and its log) as artifacts. It does not
// write the action record: see Put.
func Run(ctx context.Context, st *store.Store, job Job) (_ *Result, err error) {
	for name, t := range job.Tools {
		got, _, err := job.Hash(ctx, t.Path)
		if err != nil {
			return nil, fmt.Errorf("hashing the tool %q (%s): %w", name, t.Path, err)
		}
		if got != t.Sum {
			return nil, &ToolChangedError{Name: name, Path: t.Path, Want: t.Sum, Got: got}
		}
	}
	// Named after this process, so that the directory of a provider killed
	// mid-build is removed by a later build on the machine — a day later:
	// a provider in another PID namespace (a container sharing /tmp) looks
	// dead from here while its build runs.
	tmpfile.SweepFunc(job.TempDir, dirPrefix, sweepAge, removeAll)
	base, err := tmpfile.MkdirTemp(job.TempDir, dirPrefix)
	if err != nil {
		return nil, err
	}
	defer removeAll(base)
	work := filepath.Join(base, "work")
	home := filepath.Join(work, Reserved, "home")
	tmp := filepath.Join(work, Reserved, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := placeInputs(ctx, st, work, job.Spec.Inputs); err != nil {
		return nil, err
	}
	path, err := toolPath(base, job.Tools)
	if err != nil {
		return nil, err
	}
	env := []string{"HOME=" + home, "TMPDIR=" + tmp, "PATH=" + path}
	for k, v := range job.Spec.Environment {
		env = append(env, k+"="+v)
	}
	for k, dir := range job.Caches {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("the cache directory of %s: %w", k, err)
		}
		env = append(env, k+"="+dir)
	}
	sort.Strings(env)

	argv0 := job.Spec.Command[0]
	if t, ok := job.Tools[argv0]; ok {
		argv0 = filepath.Join(base, "tools", argv0)
		if !linkedTools {
			argv0 = t.Path
		}
	} else {
		argv0 = filepath.Join(work, filepath.FromSlash(argv0))
	}
	logFile, err := os.Create(filepath.Join(base, "log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // scratch: stored below (the store flushes its own copy)
	sink := newOutputSink(logFile, job.Output)
	defer func() {
		if job.Failed != nil && commandFailed(err) {
			replay(logFile.Name(), job.Failed)
		}
	}()

	runCtx, cancel := context.WithTimeout(ctx, job.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, argv0, job.Spec.Command[1:]...)
	cmd.Args[0] = job.Spec.Command[0]
	cmd.Dir, cmd.Env = work, env
	// One pipe for stdout and stderr, read here: the command is done when
	// it exits, whatever it left running holds (it is killed then).
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer func() { _ = pr.Close() }()
	cmd.Stdout, cmd.Stderr = pw, pw
	setGroup(cmd)
	start := time.Now()
	err = startAndWait(cmd, func() {
		_ = pw.Close() // the command holds its own copies
		go sink.readFrom(pr)
	})
	elapsed := time.Since(start)
	killGroup(cmd) // nothing the command started outlives it, to write into the output as it is stored
	_ = pw.Close()
	// Only a process that left the group (setsid) can still hold the pipe:
	// its output is not waited for.
	_ = pr.SetReadDeadline(time.Now().Add(2 * time.Second))
	sink.wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case runCtx.Err() != nil:
		return nil, &TimeoutError{Timeout: job.Timeout, Tail: sink.tail()}
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, &ExitError{Status: exit.String(), Tail: sink.tail()}
		}
		return nil, &ExitError{Status: err.Error(), Tail: sink.tail()}
	}
	if err := sink.writeErr(); err != nil {
		return nil, fmt.Errorf("writing the build log: %w", err)
	}
	// Read-only bits do not stop root: what the command did to its inputs
	// is checked, so an output never depends on an input it altered.
	if err := checkInputs(ctx, work, job.Spec.Inputs, sink.tail()); err != nil {
		return nil, err
	}
	res := &Result{Record: Record{Key: job.Spec.Key(), Duration: elapsed.Milliseconds()}}
	out, fi, err := outputPath(work, job.Spec.Output)
	if err != nil {
		return nil, &OutputError{Output: job.Spec.Output, What: err.Error(), Tail: sink.tail()}
	}
	switch {
	case fi.IsDir():
		m, err := st.PutDir(ctx, out, digest.Options{})
		if err != nil {
			return nil, outputError(job.Spec.Output, err, sink.tail())
		}
		res.Listing = m
		res.Record.Output, res.Record.Type = m.Digest(), TypeTree
		res.Record.Size, res.Record.Files = m.Size(), int64(len(m.Entries))
	case fi.Mode().IsRegular():
		sum, size, err := st.PutFile(ctx, out)
		if err != nil {
			return nil, outputError(job.Spec.Output, err, sink.tail())
		}
		res.Record.Output, res.Record.Size, res.Record.Files = sum, size, 1
		res.Record.Type = TypeFile
		if digest.KindOf(fi.Mode()) == digest.KindExec {
			res.Record.Type = TypeExec
		}
	default:
		return nil, &OutputError{Output: job.Spec.Output, What: "is " + digest.TypeName(fi.Mode().Type()) + ", not a file or a directory", Tail: sink.tail()}
	}
	if res.Record.Log, _, err = st.PutFile(ctx, logFile.Name()); err != nil {
		return nil, fmt.Errorf("storing the build log: %w", err)
	}
	return res, nil
}

// commandFailed tells the errors of a command that ran and failed, which
// show the last lines of its output.
func commandFailed(err error) bool {
	var exit *ExitError
	var timeout *TimeoutError
	var output *OutputError
	var input *InputChangedError
	return errors.As(err, &exit) || errors.As(err, &timeout) || errors.As(err, &output) || errors.As(err, &input)
}

// failedPiece bounds a piece of a failed command's output given to
// Job.Failed: a log entry, under 64 KiB however it is escaped (see
// batchBytes).
const failedPiece = batchBytes

// FailedOutput bounds what of a failed command's output goes to
// Job.Failed: its end. A step that prints without end until its timeout
// (gigabytes) would otherwise cost a minute of log entries that nobody
// reads unless TF_LOG is set; 16 MiB take well under a second.
const FailedOutput = 16 << 20

// replay gives the end of the log at p (FailedOutput bytes, from the
// start of a line) to failed, in pieces of whole lines (a longer line is
// split): a few calls per MiB, whatever the number of lines.
func replay(p string, failed func(piece []byte, offset, total int64)) {
	f, err := os.Open(p)
	if err != nil {
		return // best effort: the error still shows the last lines
	}
	defer func() { _ = f.Close() }() // read-only
	fi, err := f.Stat()
	if err != nil {
		return
	}
	buf := make([]byte, failedPiece)
	var off, held int64
	if fi.Size() > FailedOutput {
		off = fi.Size() - FailedOutput
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return
		}
		// Start at the next line.
		n, _ := io.ReadFull(f, buf)
		i := bytes.IndexByte(buf[:n], '\n') + 1 // 0: a line longer than a piece, taken from here
		off += int64(i)
		held = int64(copy(buf, buf[i:n]))
	}
	for {
		n, err := io.ReadFull(f, buf[held:])
		end := held + int64(n)
		if end == 0 {
			return
		}
		cut := end
		if err == nil { // more follows: end at the last newline
			if i := bytes.LastIndexByte(buf[:end], '\n'); i >= 0 {
				cut = int64(i) + 1
			}
		}
		failed(buf[:cut], off, fi.Size())
		off += cut
		held = int64(copy(buf, buf[cut:end]))
		if err != nil {
			return
		}
	}
}

// dirPrefix names build directories in the temp directory.
const dirPrefix = "immutable-build-"

// sweepAge is how old a dead process's build directory must be before it
// is removed.
const sweepAge = 24 * time.Hour

// outputPath finds the output in the working directory without following
// a link on the way: a link there could make a host file the output.
func outputPath(work, rel string) (string, fs.FileInfo, error) {
	p := work
	parts := strings.Split(rel, "/")
	for i, c := range parts {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", nil, errors.New("does not exist")
		case err != nil:
			return "", nil, err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", nil, fmt.Errorf("is reached through the symlink %q, which the output may not go through (it could point anywhere on the machine)", strings.Join(parts[:i+1], "/"))
		case i < len(parts)-1 && !fi.IsDir():
			return "", nil, fmt.Errorf("cannot exist: %q is %s", strings.Join(parts[:i+1], "/"), digest.TypeName(fi.Mode().Type()))
		case i == len(parts)-1:
			return p, fi, nil
		}
	}
	return "", nil, errors.New("is empty")
}

// outputError tells an output the store cannot take (a special file, a
// name the digest spec cannot encode) from a failure of the store.
func outputError(output string, err error, last []string) error {
	var te *digest.TypeError
	var ne *digest.NameError
	var ce *digest.ChangedError
	if errors.As(err, &te) || errors.As(err, &ne) || errors.As(err, &ce) {
		return &OutputError{Output: output, What: "cannot be stored: " + err.Error(), Tail: last}
	}
	return fmt.Errorf("storing the output %q: %w", output, err)
}

// InputChangedError is a command that changed one of its inputs.
type InputChangedError struct {
	Input string
	Tail  []string
}

func (e *InputChangedError) Error() string {
	return fmt.Sprintf("the command changed its input %q, which it must only read (write into a directory of your own and name it as the output); nothing was recorded. Last lines of its output:\n%s", e.Input, tail(e.Tail))
}

// checkInputs hashes each input again after the run.
func checkInputs(ctx context.Context, work string, inputs map[string]digest.Sum, last []string) error {
	for name, want := range inputs {
		p := filepath.Join(work, name)
		fi, err := os.Lstat(p)
		var got digest.Sum
		switch {
		case err != nil:
		case fi.IsDir():
			var m *digest.Listing
			if m, err = digest.HashTree(ctx, p, digest.Options{}); err == nil {
				got = m.Digest()
			}
		case fi.Mode().IsRegular():
			got, _, err = digest.HashListed(ctx, p, fi)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || got != want {
			return &InputChangedError{Input: name, Tail: last}
		}
	}
	return nil
}

// FileListing is the one-entry listing of a file output, named after the
// output's last component: what its archive holds.
func (r *Record) FileListing(output string) *digest.Listing {
	mode := fs.FileMode(0o644)
	if r.Type == TypeExec {
		mode = 0o755
	}
	return digest.FileListing(filepath.Base(filepath.FromSlash(output)), mode, r.Output, r.Size)
}

// ArchiveListing is what the archive of the recorded output holds: a
// tree's listing (man, else read from st and verified as it is read), or
// a file's one-entry listing (FileListing).
func (r *Record) ArchiveListing(ctx context.Context, st *store.Store, output string, man *digest.Listing) (*digest.Listing, error) {
	switch {
	case man != nil:
		return man, nil
	case r.Type == TypeTree:
		return st.GetListing(ctx, r.Output)
	}
	return r.FileListing(output), nil
}

// InputError is an input that could not be placed in the working
// directory: not in the store, damaged there, or unsafe to write out.
type InputError struct {
	Name string
	Err  error
}

func (e *InputError) Error() string { return fmt.Sprintf("the input %q: %v", e.Name, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// placeInputs writes each input out of the store (every byte verified) to
// work/<name>, then makes it read-only.
func placeInputs(ctx context.Context, st *store.Store, work string, inputs map[string]digest.Sum) error {
	w := &export.Writer{St: st, Refs: archive.NewRefs(st), Scratch: true}
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c, err := export.Load(ctx, st, inputs[name])
		if err != nil {
			return &InputError{Name: name, Err: err}
		}
		format := export.DefaultFormat(c.Kind)
		if err := export.Check(ctx, st, c, format); err != nil {
			return &InputError{Name: name, Err: err}
		}
		target := filepath.Join(work, name)
		if _, err := w.Write(ctx, c, format, target, nil, nil); err != nil {
			return &InputError{Name: name, Err: err}
		}
		if err := readOnly(target); err != nil {
			return err
		}
		if c.Kind == store.Blob {
			// A blob has no mode: a file input may be a script or a binary
			// another step built (the record's "exec"), so it can be run.
			if err := os.Chmod(target, 0o555); err != nil {
				return err
			}
		}
	}
	return nil
}

// readOnly removes every write permission under p (links untouched).
func readOnly(p string) error {
	var dirs []string
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, q)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return os.Chmod(q, fi.Mode().Perm()&^0o222)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first: a parent stays writable until its children are done
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// removeAll deletes a build directory, whatever its command left
// read-only in it.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700) // best effort: what cannot be removed stays in the temp dir
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
