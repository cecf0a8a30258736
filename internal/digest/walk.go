package digest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
)

// Options control a tree walk.
type Options struct {
	// Excludes are doublestar globs matched against slash-separated paths
	// relative to the root. A directory that matches is skipped whole.
	Excludes []string
	// Workers is how many files are hashed at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, counts what has been hashed so far, for a caller
	// that reports progress from another goroutine.
	Progress *Progress
}

// Progress counts the files and bytes a walk has hashed.
type Progress struct {
	Files atomic.Int64
	Bytes atomic.Int64
}

// CheckExclude reports whether a glob is valid and can match a path of a
// tree: paths are relative, slash-separated and clean, so an empty glob,
// an absolute one, or one with "." or ".." segments would silently match
// nothing.
func CheckExclude(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("the glob is empty and matches nothing: remove it, or write a path relative to the source directory, such as \"**/*.map\"")
	}
	if !doublestar.ValidatePattern(pattern) {
		return fmt.Errorf("%q is not a valid glob: check its brackets and braces (see https://github.com/bmatcuk/doublestar#patterns)", pattern)
	}
	if filepath.IsAbs(pattern) {
		return fmt.Errorf("%q is absolute: excludes are matched against paths relative to the source directory, such as \"**/*.map\"", pattern)
	}
	for _, part := range strings.Split(pattern, "/") {
		if part == "." || part == ".." {
			return fmt.Errorf("%q has a %q segment and can never match: excludes are matched against clean paths inside the source directory, such as \"build/**\" (a path outside the source is never part of it)", pattern, part)
		}
	}
	return nil
}

// Excluded reports whether rel, a path inside a tree, is left out by the
// globs: itself, or a directory above it, matches one.
func Excluded(rel string, excludes []string) bool {
	for p := rel; p != "." && p != ""; p = path.Dir(p) {
		for _, g := range excludes {
			if ok, _ := doublestar.Match(g, p); ok {
				return true
			}
		}
	}
	return false
}

// TypeError is a file in a tree that is neither regular, a symlink nor a
// directory (a socket, FIFO or device).
type TypeError struct {
	Path string
	Type string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("%q is %s; a tree may only hold regular files, symlinks and directories: remove it or exclude it", e.Path, e.Type)
}

// TypeName says in words what kind of file a mode's type bits describe:
// "a named pipe", "a character device", …, for messages.
func TypeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}

// ChangedError is a listed file that was replaced before it was read: by a
// symlink, a special file or another file.
type ChangedError struct {
	Path string
	Now  string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%q changed while it was being read: it is now %s, not the regular file that was listed; nothing of it was read. Make sure nothing rewrites the tree during plan and apply, then run again", e.Path, e.Now)
}

// FileHasher hashes one regular file. abs is its path on disk, rel its
// path in the tree, info what lstat said of it; it must read the file with
// HashListed or OpenListed, so a file swapped since it was listed is not
// read. Walk calls it from several goroutines at once.
type FileHasher func(ctx context.Context, abs, rel string, info fs.FileInfo) (Sum, int64, error)

const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// getBuf takes a buffer from the pool (which only ever holds *[]byte).
func getBuf() *[]byte {
	if bp, ok := bufPool.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, bufSize)
	return &b
}

// Copy copies r to w through a pooled buffer, so that memory stays flat
// whatever the size, and stops when ctx is cancelled.
func Copy(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := getBuf()
	defer bufPool.Put(bp)
	return io.CopyBuffer(onlyWriter{w}, ctxReader{ctx, r}, *bp)
}

// onlyWriter hides ReadFrom, so that io.CopyBuffer really uses the pooled
// buffer and the context check.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// HashReader returns the sha256 and length of everything r yields.
func HashReader(ctx context.Context, r io.Reader) (Sum, int64, error) {
	h := sha256.New()
	n, err := Copy(ctx, h, r)
	var s Sum
	if err != nil {
		return s, n, err
	}
	h.Sum(s[:0])
	return s, n, nil
}

// HashTree walks root and hashes it (spec v1).
func HashTree(ctx context.Context, root string, opts Options) (*Listing, error) {
	return Walk(ctx, root, opts, func(ctx context.Context, abs, _ string, info fs.FileInfo) (Sum, int64, error) {
		return HashListed(ctx, abs, info)
	})
}

type job struct {
	index    int
	abs, rel string
	entry    fs.DirEntry
}

// Walk lists the tree under root and builds its listing, hashing regular
// files with hash on opts.Workers goroutines while the walk goes on.
// Symlinks below root are recorded, never followed; root itself may be a
// symlink to a directory.
func Walk(ctx context.Context, root string, opts Options, hash FileHasher) (*Listing, error) {
	for _, p := range opts.Excludes {
		if err := CheckExclude(p); err != nil {
			return nil, err
		}
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu       sync.Mutex
		entries  []Entry
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}

	jobs := make(chan job, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				info, err := j.entry.Info()
				if err == nil && !info.Mode().IsRegular() { // replaced since it was listed
					err = &ChangedError{Path: j.rel, Now: TypeName(info.Mode().Type())}
				}
				if err != nil {
					fail(err)
					continue
				}
				kind := KindOf(info.Mode())
				sum, size, err := hash(ctx, j.abs, j.rel, info)
				if err != nil {
					fail(fmt.Errorf("%s: %w", j.rel, err))
					continue
				}
				mu.Lock()
				e := &entries[j.index]
				e.Kind, e.SHA256, e.Size = kind, sum, size
				mu.Unlock()
				if opts.Progress != nil {
					opts.Progress.Files.Add(1)
					opts.Progress.Bytes.Add(size)
				}
			}
		}()
	}

	walkErr := filepath.WalkDir(resolved, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if abs == resolved {
			return nil
		}
		rel, err := filepath.Rel(resolved, abs)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, p := range opts.Excludes {
			if ok, _ := doublestar.Match(p, rel); ok {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if err := CheckName(rel); err != nil {
			return err
		}
		t := d.Type()
		switch {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(abs)
			if errors.Is(err, syscall.EINVAL) {
				return &ChangedError{Path: rel, Now: "not a symlink"}
			}
			if err != nil {
				return err
			}
			mu.Lock()
			entries = append(entries, Entry{Path: rel, Kind: KindSymlink, SHA256: sha256.Sum256([]byte(target)), Size: int64(len(target))})
			mu.Unlock()
			return nil
		case t.IsRegular():
			// lstat (for the exec bit and the stat cache) happens in the
			// workers: on large trees of small files it is most of the work.
			mu.Lock()
			entries = append(entries, Entry{Path: rel})
			i := len(entries) - 1
			mu.Unlock()
			select {
			case jobs <- job{index: i, abs: abs, rel: rel, entry: d}:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		default:
			return &TypeError{Path: rel, Type: TypeName(t)}
		}
	})
	if walkErr != nil {
		// Stop the workers: what is still queued must not be hashed, or
		// stored, for a walk that has already failed.
		cancel()
	}
	close(jobs)
	wg.Wait()

	// Report the failure that stopped the walk, not the cancellations it
	// caused in the others.
	for _, err := range []error{firstErr, walkErr} {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if walkErr != nil {
		return nil, walkErr
	}
	// A cancelled caller may have stopped workers before they hashed
	// everything; never return a listing with holes.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &Listing{Entries: entries}
	m.Sort()
	return m, nil
}

// IsNotExist reports whether err says a path does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
