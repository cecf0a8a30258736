//go:build unix

package actioncache

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	b, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return store.New(b)
}

func hashFile(ctx context.Context, p string) (digest.Sum, int64, error) {
	return digest.HashFile(ctx, p)
}

func tools(t testing.TB, names ...string) (map[string]Tool, map[string]digest.Sum) {
	t.Helper()
	ts, sums := map[string]Tool{}, map[string]digest.Sum{}
	for _, n := range names {
		tool, err := FindTool(context.Background(), n, hashFile)
		if err != nil {
			t.Fatal(err)
		}
		ts[n], sums[n] = tool, tool.Sum
	}
	return ts, sums
}

// job builds a job running an sh script with the given tools besides sh.
func job(t testing.TB, script string, inputs map[string]digest.Sum, output string, more ...string) Job {
	t.Helper()
	ts, sums := tools(t, append([]string{"sh"}, more...)...)
	return Job{
		Spec:    Spec{Command: []string{"sh", "-c", script}, Tools: sums, Inputs: inputs, Output: output},
		Tools:   ts,
		Timeout: time.Minute,
		Hash:    hashFile,
		TempDir: t.TempDir(),
	}
}

func TestRunStoresTheOutputAndOnlyDeclaredThingsAreThere(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := st.PutDir(ctx, src, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
mkdir out
cat src/a.txt > out/copy.txt
env | sort > out/env.txt
ls -a > out/ls.txt
echo building
echo to-stderr >&2`
	j := job(t, script, map[string]digest.Sum{"src": m.Digest()}, "out", "mkdir", "cat", "env", "sort", "ls")
	j.Spec.Environment = map[string]string{"GREETING": "hi there"}
	var lines []string
	j.Output = func(b OutputBatch) { lines = append(lines, b.Lines...) }
	res, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Type != TypeTree || res.Listing == nil || res.Record.Output != res.Listing.Digest() {
		t.Fatalf("record %+v", res.Record)
	}
	files := map[string]string{}
	for _, e := range res.Listing.Entries {
		rc, err := st.OpenBlob(ctx, e.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if _, err := digest.Copy(ctx, &b, rc); err != nil {
			t.Fatal(err)
		}
		_ = rc.Close()
		files[e.Path] = b.String()
	}
	if files["copy.txt"] != "alpha\n" {
		t.Errorf("copy.txt = %q", files["copy.txt"])
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(files["env.txt"]), "\n") {
		name, _, _ := strings.Cut(l, "=")
		names = append(names, name)
	}
	// sh itself adds PWD (and some shells OLDPWD, SHLVL): nothing from the
	// test process may leak in.
	for _, n := range names {
		if !slices.Contains([]string{"GREETING", "HOME", "PATH", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"}, n) {
			t.Errorf("variable %s leaked into the build (%v)", n, names)
		}
	}
	if !strings.Contains(files["env.txt"], "GREETING=hi there\n") || !strings.Contains(files["env.txt"], "/work/.build/home\n") {
		t.Errorf("env.txt = %q", files["env.txt"])
	}
	if ls := strings.Fields(files["ls.txt"]); !slices.Equal(ls, []string{".", "..", ".build", "out", "src"}) {
		t.Errorf("working directory holds %v", ls)
	}
	if !slices.Contains(lines, "building") || !slices.Contains(lines, "to-stderr") {
		t.Errorf("lines streamed: %v", lines)
	}
	// The log is stored, whole.
	rc, err := st.OpenBlob(ctx, res.Record.Log)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	_, _ = digest.Copy(ctx, &log, rc)
	_ = rc.Close()
	if !strings.Contains(log.String(), "building\n") {
		t.Errorf("log = %q", log.String())
	}
	if missing, err := st.MissingBlobs(ctx); err != nil || len(missing) > 0 {
		t.Fatalf("missing blobs %v %v", missing, err)
	}
}

func TestAnInputChangedByTheCommandFailsTheBuild(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := st.PutDir(ctx, src, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := st.Backend().List(ctx, "")
	// The read-only bits stop a mistake, not root or a chmod: the change is
	// found after the run.
	j := job(t, "chmod u+w src/a.txt && echo x >> src/a.txt && echo x > out", map[string]digest.Sum{"src": m.Digest()}, "out", "chmod")
	_, err = Run(ctx, st, j)
	var changed *InputChangedError
	if !errors.As(err, &changed) || changed.Input != "src" {
		t.Fatalf("got %v", err)
	}
	if after, _ := st.Backend().List(ctx, ""); !slices.Equal(before, after) {
		t.Fatalf("the store changed: %v", after)
	}
}

func TestCachesPersistBetweenRunsOutsideTheKey(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	cache := filepath.Join(t.TempDir(), "not-yet", "go-build")
	j := job(t, `echo run >> "$MYCACHE/runs" && cat "$MYCACHE/runs" > out`, nil, "out", "cat")
	j.Caches = map[string]string{"MYCACHE": cache}
	for want := 1; want <= 2; want++ {
		j.Spec.Salt = strconv.Itoa(want) // another step, the same cache
		res, err := Run(ctx, st, j)
		if err != nil {
			t.Fatal(err)
		}
		if res.Record.Output != digest.Bytes([]byte(strings.Repeat("run\n", want))) {
			t.Fatalf("run %d did not see the cache of the runs before it", want)
		}
	}
}

func TestUndeclaredToolsAreNotFound(t *testing.T) {
	j := job(t, "cat /dev/null > out", nil, "out") // cat not declared
	_, err := Run(context.Background(), newStore(t), j)
	var exit *ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "cat") {
		t.Fatalf("got %v", err)
	}
}

func TestFileOutputAndItsType(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	j := job(t, "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh", nil, "run.sh", "chmod")
	res, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Type != TypeExec || res.Record.Output != digest.Bytes([]byte("#!/bin/sh\necho hi\n")) || res.Record.Files != 1 {
		t.Fatalf("record %+v", res.Record)
	}
	if m := res.Record.FileListing("run.sh"); m.Entries[0].Kind != digest.KindExec || m.Entries[0].Path != "run.sh" {
		t.Fatalf("listing %+v", m.Entries)
	}
}

func TestFailuresRecordNothing(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		script, output string
		check          func(error) bool
	}{
		"exit 3": {"i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done; exit 3", "out",
			func(err error) bool {
				var e *ExitError
				return errors.As(err, &e) && e.Status == "exit status 3" && len(e.Tail) == tailLines && e.Tail[tailLines-1] == "line 29"
			}},
		"no output":        {"echo done", "out", func(err error) bool { var e *OutputError; return errors.As(err, &e) }},
		"output is a link": {"ln -s /etc/passwd out", "out", func(err error) bool { var e *OutputError; return errors.As(err, &e) }},
	} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			j := job(t, tc.script, nil, tc.output, "ln")
			_, err := Run(ctx, st, j)
			if !tc.check(err) {
				t.Fatalf("got %v", err)
			}
			keys, _ := st.Backend().List(ctx, "")
			if len(keys) != 0 {
				t.Fatalf("a failed build stored %v", keys)
			}
		})
	}
}

func TestTimeoutKillsTheWholeGroup(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The grandchild ignores nothing but outlives sh unless its group is killed.
	j := job(t, "sleep 300 & echo $! > "+pidFile+"; echo started; wait", nil, "out", "sleep")
	j.Timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := Run(ctx, st, j)
	var te *TimeoutError
	if !errors.As(err, &te) || !slices.Contains(te.Tail, "started") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Run returned after %s", d)
	}
	awaitGone(t, pidFile)
	keys, _ := st.Backend().List(ctx, "")
	if len(keys) != 0 {
		t.Fatalf("a timed-out build stored %v", keys)
	}
}

func TestToolChangedSincePlanRunsNothing(t *testing.T) {
	j := job(t, "touch out", nil, "out", "touch")
	tl := j.Tools["touch"]
	tl.Sum = digest.Bytes([]byte("another touch"))
	j.Tools["touch"] = tl
	st := newStore(t)
	_, err := Run(context.Background(), st, j)
	var tc *ToolChangedError
	if !errors.As(err, &tc) {
		t.Fatalf("got %v", err)
	}
	if keys, _ := st.Backend().List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("stored %v: the step ran", keys)
	}
}

// awaitGone waits, with a deadline, until the process whose id is in
// pidFile is gone (or a zombie waiting for init to reap it).
func awaitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil && strings.Contains(string(stat), ") Z ") {
			return // a zombie: dead, waiting for init (Linux; elsewhere init reaps it before the deadline)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process %d still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestABackgroundProcessDoesNotHoldTheBuild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// sleep keeps the output pipe open; the build is done when sh exits.
	j := job(t, "sleep 300 & echo $! > "+pidFile+"; echo x > out", nil, "out", "sleep")
	start := time.Now()
	res, err := Run(context.Background(), newStore(t), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Output != digest.Bytes([]byte("x\n")) {
		t.Fatal("wrong output")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("the build waited %s for its background process", d)
	}
	awaitGone(t, pidFile)
}

func TestOutputChecks(t *testing.T) {
	for name, tc := range map[string]struct{ script, output, want string }{
		"through a link": {"ln -s /etc d", "d/hostname", "through the symlink"},
		"under a file":   {"echo x > f", "f/x", "cannot exist"},
		"a named pipe":   {"mkdir o && mkfifo o/p", "o", "cannot be stored"},
	} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			_, err := Run(context.Background(), st, job(t, tc.script, nil, tc.output, "ln", "mkdir", "mkfifo"))
			var oe *OutputError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v", err)
			}
			if keys, _ := st.Backend().List(context.Background(), ""); len(keys) != 0 {
				t.Fatalf("stored %v", keys)
			}
		})
	}
}

func TestAFileInputCanBeRun(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	script := []byte("#!/bin/sh\necho ran > out\n")
	sum := digest.Bytes(script)
	if _, err := st.PutBlob(ctx, sum, strings.NewReader(string(script))); err != nil {
		t.Fatal(err)
	}
	ts, sums := tools(t, "sh")
	j := Job{
		Spec:  Spec{Command: []string{"./t.sh"}, Tools: sums, Inputs: map[string]digest.Sum{"t.sh": sum}, Output: "out"},
		Tools: ts, Timeout: time.Minute, Hash: hashFile, TempDir: t.TempDir(),
	}
	res, err := Run(ctx, st, j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Output != digest.Bytes([]byte("ran\n")) {
		t.Fatal("wrong output")
	}
}

func TestTheDirectoryOfAKilledBuildIsSwept(t *testing.T) {
	tmp := t.TempDir()
	// A process that has ended: its id is free (the build of a provider
	// killed with SIGKILL).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(tmp, dirPrefix+strconv.Itoa(cmd.Process.Pid)+"-1")
	if err := os.MkdirAll(filepath.Join(left, "work", "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := readOnly(filepath.Join(left, "work")); err != nil {
		t.Fatal(err)
	}
	// As old as a day: younger, its process may live in another PID
	// namespace (a container sharing /tmp), and it is kept.
	young := filepath.Join(tmp, dirPrefix+strconv.Itoa(cmd.Process.Pid)+"-2")
	if err := os.Mkdir(young, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-sweepAge - time.Hour)
	if err := os.Chtimes(left, old, old); err != nil {
		t.Fatal(err)
	}
	j := job(t, "echo x > out", nil, "out")
	j.TempDir = tmp
	if _, err := Run(context.Background(), newStore(t), j); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 || entries[0].Name() != filepath.Base(young) {
		t.Fatalf("in the temp dir: %v, want only the young one", entries)
	}
}
