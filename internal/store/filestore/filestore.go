// Package filestore is the store backend on the local filesystem
// (file:// URLs): one machine, any number of processes.
//
// Every object is written to a temporary file in its final directory,
// fsynced, made read-only, then hard-linked to its key — link(2) fails if
// the key exists, so an object is never overwritten, and a crash at any
// point leaves either no object or the whole one — and the directory is
// fsynced. Temporary files start with ".tmp-<pid>-" and are never listed;
// those a killed writer left are removed by the next process that writes
// in their directory (or any publish) an hour or more later.
//
// Publishing a tree of 10,000 files that way costs 20,000 fsyncs, most of
// the time of a first publish. The backend is therefore also a
// store.Stager, which batches durability per publish without weakening
// the guarantee: Stage writes each blob to its temporary file (no fsync,
// not visible); Commit makes all of them durable at once (one syncfs(2)
// of the store's filesystem on Linux, an fsync per file elsewhere), only
// then links each to its key, and makes the links durable the same way
// before it returns. The listing is written after Commit, by Create, with
// its own fsyncs. So a crash leaves each blob absent (its temporary file
// is swept) or whole, and a listing is never visible before its blobs are
// durable: the store's invariant "a stored listing implies its blobs"
// holds across power loss too.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

const tmpPrefix = ".tmp-"

// Backend is a store.Backend in a directory.
type Backend struct {
	root  string
	swept sync.Map // directories whose leftovers this process removed
	// link is os.Link; tests make it lose its answer.
	link func(oldname, newname string) error
	// durable holds the directories whose entries, and their parents'
	// up to the root, this process has made durable (syncChain): the
	// store's directories are never removed, so it stays true.
	durable sync.Map
	names   Names
	// watched reports writeback errors of staged files to flush (watch).
	watched errorWatch
}

// Names are how the messages of the store name what a user sets and who
// writes, so that each says which setting to check: the provider's, or
// the flags of a command (gc) that opens a store.
type Names struct {
	Store string // where the store's URL is given
	User  string // who writes to it
	Full  string // what to do when the store's filesystem is full
}

// ProviderNames are the provider's.
var ProviderNames = Names{Store: "the provider's `store` setting (or IMMUTABLE_STORE)", User: "the user running Terraform",
	Full: "free space there, or move the store (the provider's `store` setting, or IMMUTABLE_STORE)"}

// Or returns n, or ProviderNames when n is the zero value.
func (n Names) Or() Names {
	if n == (Names{}) {
		return ProviderNames
	}
	return n
}

// SetNames makes the store's messages name n's settings.
func (b *Backend) SetNames(n Names) { b.names = n.Or() }

var _ store.Backend = (*Backend)(nil)

// New returns a backend rooted at dir. Nothing is created until the first
// write, so that plans never write.
func New(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Backend{root: abs, link: os.Link, names: ProviderNames}, nil
}

// Locate implements store.Locator: the object's absolute path.
func (b *Backend) Locate(key string) (store.Location, error) {
	p, err := b.path(key)
	return store.Location{Path: p}, err
}

// Root is the store's directory.
func (b *Backend) Root() string { return b.root }

func (b *Backend) String() string { return "file://" + b.root }

func (b *Backend) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid store key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tmpPrefix) {
			return "", fmt.Errorf("invalid store key %q", key)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// WriteError is a failure to write into the store's directory, or to
// delete one of its keys (Key set).
type WriteError struct {
	Store string
	Key   string // the key a delete failed on, or ""
	Err   error
	Names Names // zero means ProviderNames
	root  string
}

func (e *WriteError) Error() string {
	n := e.Names.Or()
	what := "cannot write to the store " + e.Store
	if e.Key != "" {
		what = fmt.Sprintf("cannot delete %s from the store %s", usertext.Show(e.Key), e.Store) // a name of the listing
	}
	switch {
	case isFull(e.Err):
		return fmt.Sprintf("%s: %v. The filesystem holding the store is full (or the user's quota is): %s", what, e.Err, n.Full)
	case errors.Is(e.Err, syscall.EROFS):
		return fmt.Sprintf("%s: %v. The filesystem holding the store is mounted read-only: mount it read-write, or check %s",
			what, e.Err, n.Store)
	case e.Key != "" && errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("%s: %v. The file or its directory refuses it: check their attributes (lsattr; an immutable or "+
			"append-only one is removed with chattr -i or chattr -a) and their owner and permissions", what, e.Err)
	case e.Key != "":
		return fmt.Sprintf("%s: %v. Check the permissions of the file's directory: it must be writable by %s", what, e.Err, n.User)
	}
	return fmt.Sprintf("%s: %v. Check %s: the directory must be writable by %s", what, e.Err, n.Store, n.User)
}

// writeFailed tells a failure of the store's filesystem (full, read-only,
// an I/O error) while a temporary file was filled, which is the store's
// to report, from one of the content being read.
func (b *Backend) writeFailed(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.HasPrefix(filepath.Base(pe.Path), tmpPrefix) {
		return b.writeError(err)
	}
	return err
}

func (b *Backend) writeError(err error) *WriteError {
	return &WriteError{Store: b.String(), Err: err, Names: b.names, root: b.root}
}

// deleteError is a failure to delete key. The key, a name from the
// listing (anything someone put in the store), is printed as
// usertext.Show prints it, in the path of the failed call too.
func (b *Backend) deleteError(key string, err error) *WriteError {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = &fs.PathError{Op: pe.Op, Path: usertext.Show(pe.Path), Err: pe.Err}
	}
	e := b.writeError(err)
	e.Key = key
	return e
}

func (e *WriteError) Unwrap() error { return e.Err }

// Is makes a write that found no room (ENOSPC, or EDQUOT: the user's
// quota) a store.ErrFull.
func (e *WriteError) Is(target error) bool { return target == store.ErrFull && isFull(e.Err) }

// Room says what a store.ErrFull write ran out of: the user's quota
// (EDQUOT), or the filesystem's inodes, read with its block size from
// statfs on the store's root now.
func (e *WriteError) Room() store.Room {
	r := statRoom(e.root)
	r.Quota = errors.Is(e.Err, syscall.EDQUOT)
	return r
}

// isFull tells an error of a filesystem or a quota with no room left.
func isFull(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }

// BackendError marks it as a store.BackendError.
func (e *WriteError) BackendError() {}

// Create implements store.Backend.
func (b *Backend) Create(ctx context.Context, key string, r io.Reader) (err error) {
	final, err := b.path(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		return store.ErrExists
	}
	dir := filepath.Dir(final)
	tmp, err := b.createTemp(dir, true)
	if err != nil {
		return err
	}
	name := tmp.Name()
	// The temporary name goes away whether or not the link is made; a crash
	// before this runs leaves only an unlisted .tmp- file.
	defer func() { _ = os.Remove(name) }() // fails once linked and removed: nothing to report
	if err := writeTemp(ctx, tmp, r, true); err != nil {
		return b.writeFailed(err)
	}
	if err := b.link(name, final); err != nil && !linked(name, final) {
		if errors.Is(err, fs.ErrExist) {
			return store.ErrExists
		}
		return b.writeError(err)
	}
	if err := b.syncChain(dir); err != nil {
		return b.writeError(err)
	}
	return nil
}

// linked reports whether the link from tmp to final was made although
// link(2) failed: over NFS, a link whose reply was lost is sent again and
// answered EEXIST (link(2)'s manual: "use stat(2) to find out if the link
// got created"). The object is then this writer's, not another's.
func linked(tmp, final string) bool {
	a, err := os.Lstat(tmp)
	if err != nil {
		return false
	}
	b, err := os.Lstat(final)
	return err == nil && os.SameFile(a, b)
}

// syncChain fsyncs dir, for the new key's entry, and every directory
// above it up to the store's root, for the entries of directories a Stage
// made without flushing them (Commit flushes them too, but another
// process's object in such a directory must not depend on that) or that
// another process made and has not flushed yet. It stops at a directory
// whose entry this process made durable already: the first object in a
// directory costs an fsync per level, the next ones one (a lease, a
// record, a listing: every write of a step).
func (b *Backend) syncChain(dir string) error {
	if err := syncDir(dir); err != nil {
		return err
	}
	var made []string
	for d := dir; d != b.root && strings.HasPrefix(d, b.root+string(filepath.Separator)); d = filepath.Dir(d) {
		if _, ok := b.durable.Load(d); ok {
			break
		}
		if err := syncDir(filepath.Dir(d)); err != nil { // d's entry
			return err
		}
		made = append(made, d)
	}
	for _, d := range made {
		b.durable.Store(d, true)
	}
	return nil
}

// createTemp makes a temporary file in dir, a directory of the store it
// creates if needed (durably when sync is set; a Stager's Commit makes it
// durable otherwise).
func (b *Backend) createTemp(dir string, sync bool) (*os.File, error) {
	if err := b.mkdirAll(dir, sync); err != nil {
		return nil, b.writeError(err)
	}
	b.sweep(dir)
	tmp, err := tmpfile.Create(dir, tmpPrefix)
	if err != nil {
		return nil, b.writeError(err)
	}
	return tmp, nil
}

// sweepAge is how old a dead writer's temporary file must be before it is
// removed: the store may be a volume shared by containers, whose writers'
// process ids do not show here, and a publish keeps its files staged
// until it commits.
const sweepAge = time.Hour

// sweep removes, once per directory per process, the temporary files that
// writers killed mid-write left in dir (never listed, but taking space).
func (b *Backend) sweep(dir string) {
	if _, done := b.swept.LoadOrStore(dir, true); !done {
		tmpfile.SweepOlder(dir, tmpPrefix, sweepAge)
	}
}

// sweepBlobs sweeps every blob directory once per process: a killed
// publish leaves staged files in all of them, and a later one may write
// into a few only.
func (b *Backend) sweepBlobs() {
	if _, done := b.swept.LoadOrStore("blobs/*", true); done {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(b.root, filepath.FromSlash(store.FamilyBlob.Prefix()), "*")) // a bad pattern is impossible; none found is fine
	for _, d := range dirs {
		b.sweep(d)
	}
}

// startWriteback starts writing a staged file's bytes to disk without
// waiting (writeback); a variable so that tests can count the files it
// was asked for.
var startWriteback = writeback

// writeTemp fills, seals and closes a temporary file, fsyncing it when
// sync is set, and otherwise starting its writeback for the flush to come.
func writeTemp(ctx context.Context, tmp *os.File, r io.Reader, sync bool) error {
	defer func() { _ = tmp.Close() }() // closed below on success; an early return only abandons it
	if _, err := digest.Copy(ctx, tmp, r); err != nil {
		return err
	}
	if !sync {
		startWriteback(tmp)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return err
		}
	}
	return tmp.Close()
}

// staged is a blob written by Stage: its temporary file in its final
// directory.
type staged struct{ key, tmp, final string }

func (s *staged) Key() string { return s.key }

var _ store.Stager = (*Backend)(nil)

// Stage implements store.Stager: the object is written to a temporary
// file beside its key, not flushed and not visible. It returns
// store.ErrExists, writing nothing, if the key holds an object.
func (b *Backend) Stage(ctx context.Context, key string, r io.Reader) (store.Staged, error) {
	final, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(final); err == nil {
		return nil, store.ErrExists
	}
	b.sweepBlobs()
	tmp, err := b.createTemp(filepath.Dir(final), false)
	if err != nil {
		return nil, err
	}
	b.watch()
	if err := writeTemp(ctx, tmp, r, false); err != nil {
		_ = os.Remove(tmp.Name()) // abandoned; a leftover would be swept
		return nil, b.writeFailed(err)
	}
	return &staged{key: key, tmp: tmp.Name(), final: final}, nil
}

var _ store.FileStager = (*Backend)(nil)

// StageFile implements store.FileStager: src is copied to a temporary file
// beside key by the kernel (copy_file_range where the filesystem has it,
// as cp does; a plain copy elsewhere), then verify reads that copy — the
// bytes the store will hold — and the copy is abandoned unless they pass.
func (b *Backend) StageFile(ctx context.Context, key string, src *os.File, size int64, verify func(io.Reader) error) (store.Staged, error) {
	final, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(final); err == nil {
		return nil, store.ErrExists
	}
	b.sweepBlobs()
	tmp, err := b.createTemp(filepath.Dir(final), false)
	if err != nil {
		return nil, err
	}
	b.watch()
	abandon := func(err error) (store.Staged, error) {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name()) // abandoned; a leftover would be swept
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return abandon(err)
	}
	// *os.File.ReadFrom of a LimitedReader of a file is copy_file_range.
	if _, err := tmp.ReadFrom(io.LimitReader(src, size+1)); err != nil {
		return abandon(b.writeFailed(err))
	}
	// The disk writes the copy while verify reads it from the page cache.
	startWriteback(tmp)
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return abandon(b.writeFailed(err))
	}
	if err := verify(tmp); err != nil {
		return abandon(err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return abandon(b.writeFailed(err))
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return nil, b.writeFailed(err)
	}
	return &staged{key: key, tmp: tmp.Name(), final: final}, nil
}

// Commit implements store.Stager: every staged file is made durable, then
// linked to its key (never over an object: one that appeared meanwhile is
// kept), then the new links are made durable, all before it returns.
func (b *Backend) Commit(ctx context.Context, objs []store.Staged) error {
	if len(objs) == 0 {
		return nil
	}
	files := make([]string, 0, len(objs))
	for _, o := range objs {
		files = append(files, o.(*staged).tmp) //nolint:forcetypeassert // only Stage makes them
	}
	if err := b.flush(files); err != nil {
		b.Discard(objs)
		return b.writeError(err)
	}
	dirs := map[string]bool{}
	var others []string
	var linkErr error
	for _, o := range objs {
		s := o.(*staged) //nolint:forcetypeassert // only Stage makes them
		if linkErr == nil && ctx.Err() == nil {
			switch err := b.link(s.tmp, s.final); {
			case err == nil || linked(s.tmp, s.final):
				dirs[filepath.Dir(s.final)] = true
			case errors.Is(err, fs.ErrExist):
				// Another writer's, maybe not durable yet: flushed below too.
				dirs[filepath.Dir(s.final)] = true
				others = append(others, s.final)
			default:
				linkErr = b.writeError(err)
			}
		}
		_ = os.Remove(s.tmp) // linked or abandoned: the name goes either way
	}
	// The objects linked before a failure are visible: made durable below
	// all the same, then the failure is returned.
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		// The directories above too: Stage may have made them unflushed.
		for ; !dirs[d+"/"]; d = filepath.Dir(d) {
			dirs[d+"/"] = true
			list = append(list, d)
			if d == b.root || !strings.HasPrefix(d, b.root+string(filepath.Separator)) {
				break
			}
		}
	}
	if err := b.flush(append(list, others...)); err != nil && linkErr == nil {
		return b.writeError(err)
	}
	if linkErr != nil {
		return linkErr
	}
	return ctx.Err()
}

// Sync implements store.Stager: the objects at keys, and the directory
// entries that name them, are durable when it returns.
func (b *Backend) Sync(_ context.Context, keys []string) error {
	paths := make([]string, 0, 2*len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		p, err := b.path(k)
		if err != nil {
			return err
		}
		paths = append(paths, p)
		for d := filepath.Dir(p); !seen[d]; d = filepath.Dir(d) {
			seen[d] = true
			paths = append(paths, d)
			if d == b.root || !strings.HasPrefix(d, b.root+string(filepath.Separator)) {
				break
			}
		}
	}
	if err := b.flush(paths); err != nil {
		return b.writeError(err)
	}
	return nil
}

// Discard implements store.Stager.
func (b *Backend) Discard(objs []store.Staged) {
	for _, o := range objs {
		if s, ok := o.(*staged); ok {
			_ = os.Remove(s.tmp) // a leftover would be swept
		}
	}
}

// mkdirAll creates dir and its missing parents, fsyncing (when sync is
// set) each parent whose listing changed so the new directories survive a
// crash. The store's root,
// if it creates it, is readable by its owner only (0700): blobs hold
// whatever the sources held, secrets included, and are 0444 themselves.
// Directories above the root are 0755; one that exists keeps its mode.
func (b *Backend) mkdirAll(dir string, sync bool) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := b.mkdirAll(parent, sync); err != nil {
			return err
		}
	}
	mode := os.FileMode(0o755)
	if dir == b.root {
		mode = 0o700
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if !sync && dir != b.root {
		return nil // a Stager's Commit flushes it
	}
	return syncDir(parent) // the root's own entry, always: nothing else flushes it
}

// syncDir fsyncs a directory; a variable so that tests can count the
// calls.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // a directory opened only to fsync it
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

var errNotDir = syscall.ENOTDIR

// Open implements store.Backend.
func (b *Backend) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return f, err
}

// Exists implements store.Backend.
func (b *Backend) Exists(_ context.Context, key string) (bool, error) {
	p, err := b.path(key)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// List implements store.Backend.
func (b *Backend) List(_ context.Context, prefix string) ([]string, error) {
	return b.walk(prefix, nil)
}

// walk lists the keys under prefix; with links set, the symbolic links
// met go there instead of among the keys.
func (b *Backend) walk(prefix string, links *[]string) ([]string, error) {
	// Walk only the deepest directory the prefix names.
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	start := filepath.Join(b.root, filepath.FromSlash(dirKey))
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A missing prefix, or one under a regular file, lists nothing,
			// as Open finds nothing there.
			if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)) && p == start {
				return fs.SkipAll
			}
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		k := filepath.ToSlash(rel)
		switch {
		case links != nil && d.Type()&fs.ModeSymlink != 0:
			if strings.HasPrefix(k, prefix) || strings.HasPrefix(k+"/", prefix) {
				*links = append(*links, k)
			}
		case strings.HasPrefix(k, prefix):
			keys = append(keys, k)
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// Concurrency implements the store's optional Concurrency: files are
// written four per core, so that one waiting on the disk or the page
// cache does not idle a core that could hash.
func (b *Backend) Concurrency() int { return 4 * runtime.GOMAXPROCS(0) }

var _ store.Deleter = (*Backend)(nil)

// Delete implements store.Deleter: the key's file is removed and its
// directory flushed, so that a crash cannot bring it back after a later
// delete (a blob) has gone: the collector deletes listings before blobs.
func (b *Backend) Delete(_ context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil
		}
		return b.deleteError(key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return b.deleteError(key, err)
	}
	return nil
}

var _ store.BatchDeleter = (*Backend)(nil)

// DeleteMany implements store.BatchDeleter: the files are removed
// Concurrency() at once, then each directory that lost one is fsynced,
// once, after all of its removals (not once per file), so that a crash
// brings none of them back once it returns. A key whose removal or whose
// directory's fsync failed gets that error; no removal starts once ctx has
// ended.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) []error {
	errs := make([]error, len(keys))
	dirOf := make([]string, len(keys)) // the directory a removal changed, or ""
	b.parallel(len(keys), func(i int) {
		if errs[i] = ctx.Err(); errs[i] != nil {
			return
		}
		p, err := b.path(keys[i])
		if err != nil {
			errs[i] = err
			return
		}
		switch err := os.Remove(p); {
		case err == nil:
			dirOf[i] = filepath.Dir(p)
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir):
		default:
			errs[i] = b.deleteError(keys[i], err)
		}
	})
	var dirs []string
	seen := map[string]int{}
	for _, d := range dirOf {
		if _, ok := seen[d]; d != "" && !ok {
			seen[d] = len(dirs)
			dirs = append(dirs, d)
		}
	}
	// Every removal is done before any fsync starts: one fsync covers
	// them all, directories in parallel (the filesystem's journal commits
	// them together).
	dirErrs := make([]error, len(dirs))
	b.parallel(len(dirs), func(i int) { dirErrs[i] = syncDir(dirs[i]) })
	for i, d := range dirOf {
		if d != "" && dirErrs[seen[d]] != nil {
			errs[i] = b.deleteError(keys[i], dirErrs[seen[d]])
		}
	}
	return errs
}

// parallel calls fn(i) for 0 <= i < n, Concurrency() at once.
func (b *Backend) parallel(n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(b.Concurrency(), max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

var _ store.FirstPager = (*Backend)(nil)

// ListInfoFirst implements store.FirstPager: a folder costs no request,
// so a family is always listed by its folders (in parallel: their
// entries' lstat calls overlap).
func (b *Backend) ListInfoFirst(context.Context, string) ([]store.ObjectInfo, bool, error) {
	return nil, false, nil
}

// ListInfo implements store.Deleter. What a deleter lists it may delete:
// a symbolic link in the store's folders, or one of the folders on the way
// to prefix, is a *store.LinkError naming each (never followed, nor deleted
// through: what it points to may be outside the store).
func (b *Backend) ListInfo(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	links, err := b.linkedDir(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	if links == nil {
		keys, err = b.walk(prefix, &links)
		if err != nil {
			return nil, err
		}
	}
	if len(links) > 0 {
		return nil, &store.LinkError{Store: b.String(), Links: links}
	}
	infos := make([]store.ObjectInfo, 0, len(keys))
	for _, k := range keys {
		fi, err := os.Lstat(filepath.Join(b.root, filepath.FromSlash(k)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, store.ObjectInfo{Key: k, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return infos, nil
}

var _ store.Clock = (*Backend)(nil)

// linkedDir is the key of the first folder from the root down to the
// deepest one prefix names that is a symbolic link, if any.
func (b *Backend) linkedDir(prefix string) ([]string, error) {
	dirKey := strings.TrimSuffix(prefix[:strings.LastIndex(prefix, "/")+1], "/")
	if dirKey == "" {
		return nil, nil
	}
	parts := strings.Split(dirKey, "/")
	for i := range parts {
		k := strings.Join(parts[:i+1], "/")
		fi, err := os.Lstat(filepath.Join(b.root, filepath.FromSlash(k)))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil, nil // nothing there: nothing listed
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return []string{k}, nil // what is under it is behind it
		}
	}
	return nil, nil
}
