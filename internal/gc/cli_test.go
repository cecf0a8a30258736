package gc

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// TestMainUsage: bad invocations exit 2 with a message that says what to
// do, and touch nothing.
func TestMainUsage(t *testing.T) {
	t.Setenv(EnvStore, "")
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no store: give --store URL"},
		{[]string{"--store", "file://" + dir, "--keep-last", "0"}, "keep-last is 0: at least 1"},
		{[]string{"--store", "file://" + dir, "--keep-channel-moves", "0"}, "keep-channel-moves is 0"},
		{[]string{"--store", "file://" + dir, "--grace", "1h"}, "grace is 1h0m0s: it must be at least the lease time"},
		{[]string{"--store", "file://" + dir, "--keep-within", "a week"}, `"a week" is not a duration such as 36h or 30d`},
		{[]string{"--store", "file://" + dir, "now"}, `unexpected argument "now"`},
		{[]string{"--store", "file://" + filepath.Join(dir, "absent")}, "is not a directory: check --store"},
		{[]string{"--store", "s3://user:secret@bucket/x"}, "holds user info"},
		{[]string{"--store", "ftp://x"}, "ftp"},
		{[]string{"--store", "file://" + dir, "--batch-size", "0"}, "--batch-size 0: give a number from 1 to 100000"},
		// The command's own options are named, never the provider's settings.
		{[]string{"--store", "s3://user:secret@bucket/x"}, "AWS_PROFILE or --s3-profile, SSO"},
		{[]string{"--store", "s3://localhost:9000/bucket"}, "put it in --s3-endpoint (or AWS_ENDPOINT_URL_S3), and only the bucket"},
		{[]string{"--store", "s3://bucket/p?x=1"}, "settings in --s3-endpoint, --s3-region, --s3-profile and --s3-path-style"},
		// An endpoint without a scheme is refused before anything is sent.
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "localhost:9000"}, `--s3-endpoint "localhost:9000" has no scheme: write the URL of the server, http://localhost:9000 or https://localhost:9000`},
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "ftp://localhost:9000"}, `--s3-endpoint "ftp://localhost:9000" is not the URL of a server`},
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "https://key:secret@localhost:9000"}, `--s3-endpoint "https://REDACTED@localhost:9000" is not the URL of a server`},
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "key:secret@localhost:9000"}, `--s3-endpoint "REDACTED@localhost:9000" has no scheme`},
		// A query may hold a signature or a token: refused, never repeated.
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "http://localhost:9000/?X-Amz-Signature=s3cr3t"}, `--s3-endpoint "http://localhost:9000/?REDACTED" is not the URL of a server`},
		{[]string{"--store", "s3://bucket/p", "--s3-endpoint", "http://localhost:9000#s3cr3t"}, `--s3-endpoint "http://localhost:9000#REDACTED" is not the URL of a server`},
	} {
		code, _, stderr := run(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "provider's `") || strings.Contains(stderr, "secret@") || strings.Contains(stderr, "s3cr3t") {
			t.Errorf("gc %v: exit %d, %q; want 2 and %q, and no provider's setting named", c.args, code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused run wrote %v", entries)
	}
}

// TestMainEndpointFromTheEnvironment: an endpoint without a scheme in
// AWS_ENDPOINT_URL_S3 (which the SDK reads when --s3-endpoint is not
// given) is bad usage too, named as the variable.
func TestMainEndpointFromTheEnvironment(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "127.0.0.1:7070")
	code, stdout, stderr := run("--store", "s3://bucket/p")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `AWS_ENDPOINT_URL_S3 "127.0.0.1:7070" has no scheme`) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// A file:// store does not use it.
	code, _, stderr = run("--store", "file://"+t.TempDir())
	if code != 1 || !strings.Contains(stderr, "holds no releases and no content") {
		t.Fatalf("a file store with a bad S3 endpoint in the environment: exit %d, %s", code, stderr)
	}
}

// TestMainEmptyStore: a store holding nothing is most likely a mistyped
// --store: the run fails and writes nothing, unless --allow-empty; and as
// an empty folder has no store identity either, even then nothing is
// written to it.
func TestMainEmptyStore(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"--store", "file://" + dir}, {"--store", "file://" + dir, "--dry-run"}} {
		code, stdout, stderr := run(args...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "holds no releases and no content, so it was left as it is: check --store") {
			t.Fatalf("gc %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a run on an empty store wrote %v", entries)
	}
	code, stdout, stderr := run("--store", "file://"+dir, "--allow-empty")
	if code != 0 || !strings.Contains(stdout, "deleted 0 objects") {
		t.Fatalf("--allow-empty: exit %d\n%s%s", code, stdout, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--allow-empty on an empty folder wrote %v", entries)
	}
}

// TestMain: the command on a store whose objects are a month old: a dry
// run reports and changes nothing; a run deletes what the policy says;
// the store may come from IMMUTABLE_STORE; recent objects are kept.
func TestMainCollects(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	b, err := filestore.New(root)
	must(t, err)
	w := newWorld(t, store.New(b))
	month := time.Now().Add(-30 * 24 * time.Hour)
	age := func() {
		must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				err = os.Chtimes(p, month, month)
			}
			return err
		}))
	}
	policy := []string{"--keep-last", "2", "--keep-channel-moves", "1", "--keep-within", "1d", "--keep-yanked-for", "1d"}

	// Just stored: the default grace (7 days) keeps every object, release
	// records included.
	fresh := filepath.Join(t.TempDir(), "fresh")
	fb, err := filestore.New(fresh)
	must(t, err)
	newWorld(t, store.New(fb))
	code, stdout, stderr := run(append([]string{"--store", "file://" + fresh}, policy...)...)
	if code != 0 || !strings.Contains(stdout, "deleted 0 release versions") || !strings.Contains(stdout, "deleted 0 objects") {
		t.Fatalf("on fresh objects: exit %d\n%s%s", code, stdout, stderr)
	}

	age()
	before := objects(t, w.st)
	code, stdout, stderr = run(append([]string{"--store", "file://" + root, "--dry-run"}, policy...)...)
	if code != 0 || !strings.Contains(stdout, "would delete 3 release versions: web@1.0.0, web@1.2.0, web@1.3.0") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := objects(t, w.st); len(after) != len(before) {
		t.Fatalf("the dry run deleted %d objects", len(before)-len(after))
	}

	t.Setenv(EnvStore, "file://"+root)
	code, stdout, stderr = run(policy...)
	if code != 0 || !strings.Contains(stdout, "deleted 3 release versions") {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, k := range w.deleted {
		if ok, _ := b.Exists(ctx, k); ok {
			t.Fatalf("%s is still there:\n%s", k, stdout)
		}
	}
	checkKept(t, w)
}

// tree is every file and directory under root with its mode, size
// and modification time: equal snapshots mean nothing was written.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	}))
	return out
}

// TestMainRefusesAUserFolder: a folder of the user's given as --store (a
// file, and releases the user keeps there) is no store: every run is
// refused with exit 2, and nothing in it is written, created or touched —
// also with --adopt-store, which finds keys that are not the store's.
func TestMainRefusesAUserFolder(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("my notes\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "releases", "old"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "releases", "app-1.0.tar.gz"), []byte("a release of mine\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "releases", "old", "app-0.9.tar.gz"), []byte("an older one\n"), 0o644))
	old := time.Now().Add(-90 * 24 * time.Hour)
	must(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			err = os.Chtimes(p, old, old)
		}
		return err
	}))
	before := tree(t, dir)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "has no " + store.IdentityKey + ", which every store the provider writes holds, so it was left as it is: check --store"},
		{[]string{"--dry-run"}, "has no " + store.IdentityKey},
		{[]string{"--allow-empty", "-v"}, "has no " + store.IdentityKey},
		{[]string{"--adopt-store"}, "holds 3 keys outside the store's layout, such as notes.txt, releases/app-1.0.tar.gz, releases/old/app-0.9.tar.gz: it is not a store"},
		{[]string{"--adopt-store", "--dry-run"}, "so --adopt-store left it as it is"},
	} {
		code, stdout, stderr := run(append([]string{"--store", "file://" + dir}, c.args...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("gc %v on a user's folder: exit %d\n%s%s\nwant exit 2 and %q", c.args, code, stdout, stderr, c.want)
		}
	}
	if after := tree(t, dir); !maps.Equal(before, after) {
		t.Fatalf("a refused run changed the folder:\nbefore %v\nafter  %v", before, after)
	}
}

// TestMainRefusesAFolderWithNothingOfAStore: a folder of the user's that
// holds nothing under the store's prefixes (notes.txt and an empty
// releases/, or a file at the top) is no store, not an empty one: exit 2
// naming what it holds, also with --allow-empty, and nothing is written.
func TestMainRefusesAFolderWithNothingOfAStore(t *testing.T) {
	notes := t.TempDir()
	must(t, os.WriteFile(filepath.Join(notes, "notes.txt"), []byte("my notes\n"), 0o644))
	must(t, os.Mkdir(filepath.Join(notes, "releases"), 0o755))
	top := t.TempDir()
	must(t, os.WriteFile(filepath.Join(top, "foo"), []byte("mine\n"), 0o644))
	for dir, name := range map[string]string{notes: "notes.txt", top: "foo"} {
		before := tree(t, dir)
		for _, args := range [][]string{nil, {"--dry-run"}, {"--allow-empty"}, {"--allow-empty", "-v"}, {"--adopt-store"}} {
			code, stdout, stderr := run(append([]string{"--store", "file://" + dir}, args...)...)
			if want := "outside the store's layout, such as " + name + ": it is not a store"; code != 2 || strings.Contains(stdout, "deleted") ||
				!strings.Contains(stderr, want) {
				t.Errorf("gc %v on a folder holding %s: exit %d\n%s%s\nwant exit 2 and %q", args, name, code, stdout, stderr, want)
			}
		}
		if after := tree(t, dir); !maps.Equal(before, after) {
			t.Fatalf("a refused run changed the folder:\nbefore %v\nafter  %v", before, after)
		}
	}
}

// TestMainS3ErrorsNameFlags: an S3 failure says which of the command's own
// options to check (--store, --s3-endpoint, --s3-profile) and what the
// collector needs, never the provider's `store` and `s3` settings.
func TestMainS3ErrorsNameFlags(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	flags := []string{"--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", srv.Region}
	for _, c := range []struct {
		store string
		creds [2]string
		want  []string
	}{
		{"s3://no-such-bucket-here/p", [2]string{}, []string{
			`the bucket "no-such-bucket-here" does not exist`, "Check the bucket in --store (or IMMUTABLE_STORE), and --s3-endpoint (or AWS_ENDPOINT_URL_S3).",
		}},
		{"s3://" + bucket + "/p", [2]string{"not-a-key", "not-a-secret"}, []string{"AWS_PROFILE or --s3-profile"}},
	} {
		t.Run(c.store, func(t *testing.T) {
			if c.creds[0] != "" {
				t.Setenv("AWS_ACCESS_KEY_ID", c.creds[0])
				t.Setenv("AWS_SECRET_ACCESS_KEY", c.creds[1])
			}
			code, stdout, stderr := run(append([]string{"--store", c.store}, flags...)...)
			if code != 1 || stdout != "" || strings.Contains(stderr, "provider's `") || strings.Contains(stderr, "`s3") {
				t.Fatalf("exit %d\n%s%s\nwant exit 1 and no provider's setting named", code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("the message lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	// A reader's credentials on a store: the collector's permissions.
	b, err := s3store.New(ctx, bucket, "p", srv.Settings())
	must(t, err)
	st := store.New(b)
	putBlob(t, st, "content\n")
	expire(t, st)
	laterClock(t) // the blob is garbage: there is something to delete
	access, secret := srv.AddReader(t, bucket)
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	code, stdout, stderr := run(append([]string{"--store", "s3://" + bucket + "/p"}, flags...)...)
	if code != 1 || strings.Contains(stderr, "provider's `") || !strings.Contains(stderr, "access denied") ||
		!strings.Contains(stderr, "The collector needs s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject") {
		t.Fatalf("a reader's credentials: exit %d\n%s%s", code, stdout, stderr)
	}
}

// laterClock plans the collections of the test a month from now, so that
// what it stored is old on stores where it cannot be aged.
func laterClock(t *testing.T) {
	t.Cleanup(func() { planClock = time.Now })
	planClock = func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
}

// TestMainS3GaveUpSaysTheCollectionMayRunAgain: a server that keeps
// asking to slow down makes the collector give up; the message says that
// running the collection again is safe, not the provider's "Re-running
// apply", and names AWS_MAX_ATTEMPTS, the budget the command reads.
func TestMainS3GaveUpSaysTheCollectionMayRunAgain(t *testing.T) {
	srv := testserver.StartS3(t)
	bucket := srv.NewBucket(t)
	proxy := srv.Faulty(t, func(testserver.Call, int) testserver.Fault { return testserver.SlowDown })
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	code, stdout, stderr := run("--store", "s3://"+bucket+"/p", "--s3-endpoint", proxy.Endpoint, "--s3-path-style", "--s3-region", srv.Region)
	if code != 1 || strings.Contains(stderr, "apply") || !strings.Contains(stderr, "Running the collection again is safe") ||
		!strings.Contains(stderr, "raise AWS_MAX_ATTEMPTS; it is 2 now") {
		t.Fatalf("exit %d\n%s%s\nwant exit 1, that the collection may run again, and AWS_MAX_ATTEMPTS", code, stdout, stderr)
	}
}

// TestGuideDocumentsTheCommand: the lifecycle guide (generated from
// templates/guides/lifecycle.md.tmpl) names every option of the command,
// and the least --grace takes, the lease time.
func TestGuideDocumentsTheCommand(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "guides", "lifecycle.md"))
	must(t, err)
	code, _, stderr := run("-h")
	options := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(stderr, -1)
	if code != 0 || len(options) < 10 {
		t.Fatalf("gc -h: exit %d, options %v\n%s", code, options, stderr)
	}
	for _, o := range options {
		dashes := "--"
		if len(o[1]) == 1 {
			dashes = "-"
		}
		if !regexp.MustCompile(`(^|[^a-z-])` + dashes + o[1] + `([^a-z-]|$)`).Match(guide) {
			t.Errorf("the lifecycle guide does not name %s%s", dashes, o[1])
		}
	}
	row := regexp.MustCompile("(?m)^\\| `--grace D` \\|.*$").Find(guide)
	if least := fmt.Sprintf("at least %dh", int(store.LeaseTTL.Hours())); !strings.Contains(string(row), least) {
		t.Errorf("the guide's --grace row does not say %q: %s", least, row)
	}
}
