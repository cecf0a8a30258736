package filestore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Staged objects are invisible until Commit, which never overwrites an
// object that appeared meanwhile and leaves no temporary file behind;
// Discard drops them without a trace.
func TestStageCommit(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	keys := []string{"blobs/sha256/aa/one", "blobs/sha256/aa/two", "blobs/sha256/bb/three"}
	var staged []store.Staged
	for _, k := range keys {
		s, err := b.Stage(ctx, k, strings.NewReader("staged "+k))
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	if listed, _ := b.List(ctx, ""); len(listed) != 0 {
		t.Fatalf("staged objects are visible before Commit: %v", listed)
	}
	// Another writer stores one of them first, with its own bytes.
	if err := b.Create(ctx, keys[1], strings.NewReader("created first")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, staged); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		want := "staged " + k
		if i == 1 {
			want = "created first"
		}
		got, err := os.ReadFile(filepath.Join(b.Root(), k))
		if err != nil || string(got) != want {
			t.Errorf("%s holds %q, %v; want %q", k, got, err, want)
		}
		if fi, err := os.Stat(filepath.Join(b.Root(), k)); err != nil || fi.Mode().Perm() != 0o444 {
			t.Errorf("%s is not read-only: %v %v", k, fi.Mode(), err)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(b.Root(), "blobs", "sha256", "*", tmpPrefix+"*")); len(tmps) != 0 {
		t.Errorf("temporary files left after Commit: %v", tmps)
	}
	// An object that exists is not staged again.
	if _, err := b.Stage(ctx, keys[0], strings.NewReader("again")); err != store.ErrExists {
		t.Errorf("Stage over a stored object = %v, want ErrExists", err)
	}
	// Discard leaves nothing.
	s, err := b.Stage(ctx, "blobs/sha256/cc/dropped", strings.NewReader("dropped"))
	if err != nil {
		t.Fatal(err)
	}
	b.Discard([]store.Staged{s})
	if ok, _ := b.Exists(ctx, "blobs/sha256/cc/dropped"); ok {
		t.Error("a discarded object is visible")
	}
	if tmps, _ := filepath.Glob(filepath.Join(b.Root(), "blobs", "sha256", "cc", "*")); len(tmps) != 0 {
		t.Errorf("Discard left %v", tmps)
	}
}

// StageFile copies a file and hands verify the staged copy, not the
// source: what verify refuses (here, a source that grew since it was
// hashed: one byte more than its size is copied, so the copy is longer)
// leaves nothing behind, and what it accepts is staged read-only.
func TestStageFileVerifiesTheCopy(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("hello world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		return f
	}
	var seen []string
	verify := func(want string) func(r io.Reader) error {
		return func(r io.Reader) error {
			got, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			seen = append(seen, string(got))
			if string(got) != want {
				return errors.New("not what was hashed")
			}
			return nil
		}
	}
	// Hashed at 6 bytes ("hello "): the file has grown since.
	if _, err := b.StageFile(ctx, "blobs/sha256/aa/grown", open(), 6, verify("hello ")); err == nil {
		t.Fatal("a file that grew since it was hashed was staged")
	}
	if seen[0] != "hello w" {
		t.Errorf("verify read %q, want the staged copy of size+1 bytes", seen[0])
	}
	if tmps, _ := filepath.Glob(filepath.Join(b.Root(), "blobs", "sha256", "*", tmpPrefix+"*")); len(tmps) != 0 {
		t.Errorf("temporary files left after a refused copy: %v", tmps)
	}
	s, err := b.StageFile(ctx, "blobs/sha256/aa/whole", open(), 12, verify("hello world\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, []store.Staged{s}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(b.Root(), "blobs", "sha256", "aa", "whole"))
	if err != nil || fi.Mode().Perm() != 0o444 || fi.Size() != 12 {
		t.Fatalf("the staged copy is %v, %v; want 12 read-only bytes", fi, err)
	}
}

// Every staged file has its writeback started as soon as its bytes are
// written, so the disk works while the publish goes on and Commit's flush
// finds little left; a Create, which fsyncs its own file, needs none.
func TestStagedFilesStartWriteback(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	var started []string
	old := startWriteback
	startWriteback = func(f *os.File) { started = append(started, filepath.Base(f.Name())); old(f) }
	t.Cleanup(func() { startWriteback = old })

	if err := b.Create(ctx, "blobs/sha256/cc/created", strings.NewReader("created")); err != nil {
		t.Fatal(err)
	}
	if len(started) != 0 {
		t.Fatalf("Create started writeback of %v; it fsyncs its own file", started)
	}
	s1, err := b.Stage(ctx, "blobs/sha256/aa/one", strings.NewReader("one"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "two")
	if err := os.WriteFile(src, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	s2, err := b.StageFile(ctx, "blobs/sha256/bb/two", f, 3, func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	st1, ok1 := s1.(*staged)
	st2, ok2 := s2.(*staged)
	if !ok1 || !ok2 {
		t.Fatalf("Stage and StageFile returned %T and %T, want *staged", s1, s2)
	}
	want := []string{filepath.Base(st1.tmp), filepath.Base(st2.tmp)}
	if strings.Join(started, " ") != strings.Join(want, " ") {
		t.Fatalf("writeback started for %v, want each staged file once: %v", started, want)
	}
	if err := b.Commit(ctx, []store.Staged{s1, s2}); err != nil {
		t.Fatal(err)
	}
}
