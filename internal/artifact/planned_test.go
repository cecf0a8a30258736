package artifact

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func TestPlannedContentIsReadFromDiskVerified(t *testing.T) {
	ctx := context.Background()
	s, _ := newSources(t, t.TempDir())
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	c, err := s.Hash(ctx, Source{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	l, isFile, err := s.PlannedListing(ctx, c.Sum)
	if err != nil || isFile || l.Digest() != c.Sum {
		t.Fatalf("PlannedListing = %v, %v, %v; want the tree %s", l, isFile, err, c.Sum)
	}
	read := func(sum digest.Sum) (string, error) {
		rc, err := s.OpenPlanned(ctx, sum)
		if err != nil {
			return "", err
		}
		defer func() { _ = rc.Close() }()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	if got, err := read(digest.Bytes([]byte("hello"))); err != nil || got != "hello" {
		t.Fatalf("file: %q, %v", got, err)
	}
	if got, err := read(digest.Bytes([]byte("a.txt"))); err != nil || got != "a.txt" {
		t.Fatalf("symlink target: %q, %v", got, err)
	}

	// Changed since it was hashed: the reader fails at its end.
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("HELLO"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mismatch *store.MismatchError
	if _, err := read(digest.Bytes([]byte("hello"))); !errors.As(err, &mismatch) {
		t.Fatalf("changed file read with %v; want a *store.MismatchError", err)
	}
	// A symlink put in a listed file's place is not followed.
	if err := os.Remove(filepath.Join(src, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := read(digest.Bytes([]byte("hello"))); err == nil {
		t.Fatal("a symlink in a listed file's place was followed")
	}
	// Content not hashed here: not found, so a reader moves to the store.
	other := digest.Bytes([]byte("elsewhere"))
	if _, _, err := s.PlannedListing(ctx, other); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PlannedListing of unknown content: %v; want store.ErrNotFound", err)
	}
	if _, err := s.OpenPlanned(ctx, other); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OpenPlanned of unknown content: %v; want store.ErrNotFound", err)
	}
}

func TestPlannedFileSource(t *testing.T) {
	ctx := context.Background()
	s, _ := newSources(t, t.TempDir())
	f := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := s.Hash(ctx, Source{Path: f})
	if err != nil {
		t.Fatal(err)
	}
	l, isFile, err := s.PlannedListing(ctx, c.Sum)
	if err != nil || !isFile || len(l.Entries) != 1 || l.Entries[0].SHA256 != c.Sum || l.Entries[0].Size != c.Size {
		t.Fatalf("PlannedListing(file) = %+v, %v, %v", l, isFile, err)
	}
}

func TestPlannedInlineContent(t *testing.T) {
	ctx := context.Background()
	s, _ := newSources(t, t.TempDir())
	for _, content := range []string{"v1\n", ""} {
		c := s.RememberInline([]byte(content))
		if c.Sum != digest.Bytes([]byte(content)) {
			t.Fatalf("RememberInline(%q) = %s", content, c.Sum)
		}
		l, isFile, err := s.PlannedListing(ctx, c.Sum)
		if err != nil || !isFile || l.Entries[0].Size != int64(len(content)) {
			t.Fatalf("PlannedListing(%q) = %+v, %v, %v", content, l, isFile, err)
		}
		rc, err := s.OpenPlanned(ctx, c.Sum)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil || string(b) != content {
			t.Fatalf("OpenPlanned(%q) = %q, %v", content, b, err)
		}
	}
}
