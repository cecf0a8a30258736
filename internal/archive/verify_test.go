package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// TestCheckLink: targets that are absolute or climb above the root are
// refused; relative links inside the tree are fine.
func TestCheckLink(t *testing.T) {
	for _, c := range []struct {
		path, target string
		ok           bool
	}{
		{"current", "lib/util.js", true},
		{"x", "a/a/../..", false},               // a -> "." makes this two levels above the root
		{"esc2", "sub/link/sub/link/..", false}, // through a link twice: "sub/link/sub/link" is no listed path
		{"x", "a/b", true},
		{"x", "sub/link/..", false},
		{"sub/y", "../a", true},
		{"c/b/link", "../c", true},
		{"c/link", ".", true},
		{"link", "/etc/shadow", false},
		{"link", "..", false},
		{"link", "../src/x", false},
		{"c/link", "../../x", false},
		{"c/link", "b/../../../x", false},
		{"link", "C:\\\\Windows", false},
		{"link", "\\\\server\\\\share", false},
	} {
		err := CheckLink(c.path, c.target, map[string]bool{"a": true, "sub/link": true})
		var le *LinkError
		if c.ok != (err == nil) || (err != nil && (!errors.As(err, &le) || le.Target != c.target)) {
			t.Errorf("CheckLink(%q, %q) = %v, want ok=%v and an error naming the target", c.path, c.target, err, c.ok)
		}
	}
}

// TestWriteRefusesEscapingLink: neither format writes a link that leaves
// the tree.
func TestWriteRefusesEscapingLink(t *testing.T) {
	m := &digest.Listing{Entries: []digest.Entry{{Path: "etc", Kind: digest.KindSymlink, SHA256: digest.Bytes([]byte("/etc")), Size: 4}}}
	open := func(context.Context, digest.Entry) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("/etc")), nil
	}
	for _, f := range Formats {
		var le *LinkError
		if err := Write(context.Background(), io.Discard, f, m, open); !errors.As(err, &le) || le.Path != "etc" {
			t.Errorf("%s: want a LinkError for etc -> /etc, got %v", f, err)
		}
	}
}

// TestVerify: an archive checks against the listing it was built from,
// and fails against any other: another tree, a changed file, an exec bit,
// a renamed or an extra entry, truncated bytes.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	for _, f := range Formats {
		b := build(t, f)
		sum := digest.Bytes(b)
		if err := Verify(ctx, f, bytes.NewReader(b), int64(len(b)), listing(), sum); err != nil {
			t.Fatalf("%s: its own listing: %v", f, err)
		}
		for name, change := range map[string]func(m *digest.Listing){
			"changed content": func(m *digest.Listing) { m.Entries[2].SHA256 = digest.Bytes([]byte("other")) },
			"exec bit":        func(m *digest.Listing) { m.Entries[0].Kind = digest.KindFile },
			"renamed":         func(m *digest.Listing) { m.Entries[1].Path = "current2" },
			"one more entry": func(m *digest.Listing) {
				m.Entries = append(m.Entries, digest.Entry{Path: "zzz", Kind: digest.KindFile, SHA256: digest.Bytes(nil)})
			},
			"one entry fewer": func(m *digest.Listing) { m.Entries = m.Entries[:len(m.Entries)-1] },
		} {
			m := listing()
			change(m)
			var ce *ContentError
			if err := Verify(ctx, f, bytes.NewReader(b), int64(len(b)), m, sum); !errors.As(err, &ce) {
				t.Errorf("%s, %s: want a ContentError, got %v", f, name, err)
			}
		}
		var ce *ContentError
		if err := Verify(ctx, f, bytes.NewReader(b[:len(b)/2]), int64(len(b)/2), listing(), digest.Bytes(b[:len(b)/2])); !errors.As(err, &ce) {
			t.Errorf("%s, truncated: want a ContentError, got %v", f, err)
		}
	}
}

func newStore(t *testing.T) *store.Store {
	b, err := filestore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return store.New(b)
}

// storeContent stores the blobs of listing() and returns it.
func storeContent(t *testing.T, st *store.Store) *digest.Listing {
	m := listing()
	for _, e := range m.Entries {
		if _, err := st.PutBlob(context.Background(), e.SHA256, strings.NewReader(content[e.Path])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.PutListing(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRefsRefuseASwappedReference: a reference pointed (behind the
// store's back) at another tree's archive is refused by Lookup, Ensure,
// Verify and WriteFile, and WriteFile then writes nothing.
func TestRefsRefuseASwappedReference(t *testing.T) {
	ctx := context.Background()
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			st := newStore(t)
			m := storeContent(t, st)
			// Another tree, archived honestly.
			other := &digest.Listing{Entries: []digest.Entry{{Path: "evil.js", Kind: digest.KindFile, SHA256: digest.Bytes([]byte("evil")), Size: 4}}}
			if _, err := st.PutBlob(ctx, other.Entries[0].SHA256, strings.NewReader("evil")); err != nil {
				t.Fatal(err)
			}
			if _, err := st.PutListing(ctx, other); err != nil {
				t.Fatal(err)
			}
			evilOpen := func(context.Context, digest.Entry) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("evil")), nil
			}
			evil, err := NewRefs(st).Ensure(ctx, f, other, evilOpen)
			if err != nil {
				t.Fatal(err)
			}
			// The reference of m names the other tree's archive.
			if _, err := st.PutArchiveRef(ctx, Version(f), m.Digest(), evil); err != nil {
				t.Fatal(err)
			}
			r := NewRefs(st)
			var ce *CorruptError
			if _, err := r.Lookup(ctx, f, m); !errors.As(err, &ce) || ce.Archive != evil {
				t.Fatalf("Lookup trusted the swapped reference: %v", err)
			}
			if _, err := r.Ensure(ctx, f, m, open); !errors.As(err, &ce) {
				t.Fatalf("Ensure trusted the swapped reference: %v", err)
			}
			if err := r.Verify(ctx, f, m, evil); !errors.As(err, &ce) {
				t.Fatalf("Verify: %v", err)
			}
			out := filepath.Join(t.TempDir(), "out", "lambda."+string(f))
			if err := r.WriteFile(ctx, f, m, evil, out, nil); !errors.As(err, &ce) {
				t.Fatalf("WriteFile wrote another tree's archive: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
				t.Fatalf("WriteFile left %v", left)
			}
		})
	}
}

// TestRefsEnsureOnceThenTrusted: Ensure builds and stores an archive once
// (the listing first, so the reference can always be checked), later
// lookups find it; a Refs checks an archive once, Verify always.
func TestRefsEnsureOnceThenTrusted(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	m := storeContent(t, st)
	sum, err := NewRefs(st).Ensure(ctx, Zip, m, open)
	if err != nil {
		t.Fatal(err)
	}
	if sum != digest.Bytes(build(t, Zip)) {
		t.Fatal("Ensure stored other bytes than Write builds")
	}
	r := NewRefs(st)
	if got, err := r.Lookup(ctx, Zip, m); err != nil || got != sum {
		t.Fatalf("Lookup: %v %v", got, err)
	}
	written := st.Stats.BlobsWritten.Load()
	if got, err := r.Ensure(ctx, Zip, m, func(context.Context, digest.Entry) (io.ReadCloser, error) {
		return nil, errors.New("an archive already stored must not be rebuilt")
	}); err != nil || got != sum || st.Stats.BlobsWritten.Load() != written {
		t.Fatalf("Ensure again: %v %v", got, err)
	}
	out := filepath.Join(t.TempDir(), "a", "b.zip")
	if err := r.WriteFile(ctx, Zip, m, sum, out, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); digest.Bytes(b) != sum {
		t.Fatal("written file differs from the archive")
	}
	// A named pipe at the target is never replaced.
	fifo := filepath.Join(t.TempDir(), "pipe.zip")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	var nr *NotRegularError
	if err := r.WriteFile(ctx, Zip, m, sum, fifo, nil); !errors.As(err, &nr) {
		t.Fatalf("WriteFile over a FIFO: %v", err)
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatal("the FIFO was replaced")
	}
}

// TestVerifyZipBytesOutsideItsDirectory: a zip whose central directory
// still matches the listing but whose local header names another path (a
// streaming extractor would write "../ev.js"), or with bytes in front of
// it, is refused: its bytes are not the reproducible archive.
func TestVerifyZipBytesOutsideItsDirectory(t *testing.T) {
	ctx := context.Background()
	b := build(t, Zip)
	renamed := append([]byte(nil), b...)
	i := bytes.Index(renamed, []byte("bin/run")) // the first local header's name
	if i < 0 || i > 64 {
		t.Fatalf("first local header name not found near the start (%d)", i)
	}
	copy(renamed[i:], "../runx") // same length; the central directory keeps "bin/run"
	prefixed := append(bytes.Repeat([]byte{'J'}, 100), b...)
	for name, z := range map[string][]byte{"local header renamed": renamed, "junk before": prefixed} {
		var ce *ContentError
		if err := Verify(ctx, Zip, bytes.NewReader(z), int64(len(z)), listing(), digest.Bytes(z)); !errors.As(err, &ce) {
			t.Errorf("%s: want a ContentError, got %v", name, err)
		}
	}
}

// TestRefNamingAMissingBlob: a reference naming an archive blob that is
// not stored is a corrupt reference (which says what to delete), not "no
// archive": Lookup and Check fail with a *CorruptError, and the error does
// not wrap store.ErrNotFound, which callers read as "build it".
func TestRefNamingAMissingBlob(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	m := storeContent(t, st)
	// Written as a hand edit or a lost object would leave it (PutArchiveRef
	// refuses to name a missing blob).
	ref := strings.NewReader(digest.Bytes([]byte("nothing")).String() + "\n")
	if err := st.Backend().Create(ctx, store.ArchiveKey(Version(Zip), m.Digest()), ref); err != nil {
		t.Fatal(err)
	}
	r := NewRefs(st)
	var ce *CorruptError
	if _, err := r.Lookup(ctx, Zip, m); !errors.As(err, &ce) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup: %v", err)
	}
	if _, err := r.Ensure(ctx, Zip, m, open); !errors.As(err, &ce) {
		t.Fatalf("Ensure: %v", err)
	}
}

// TestWriteFileSweepsAKilledApplysLeftover: a temporary file that a killed
// apply left beside output_path is removed by the next write.
func TestWriteFileSweepsAKilledApplysLeftover(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	m := storeContent(t, st)
	r := NewRefs(st)
	sum, err := r.Ensure(ctx, Zip, m, open)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "lambda.zip")
	left := filepath.Join(filepath.Dir(out), fmt.Sprintf(".lambda.zip.tmp-%d-42", cmd.Process.Pid))
	if err := os.WriteFile(left, bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(ctx, Zip, m, sum, out, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the leftover is still there: %v", err)
	}
}
