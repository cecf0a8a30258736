package export

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
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/tmpfile"
)

// ExistsError is a new target that exists.
type ExistsError struct {
	Target string
	What   string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s exists (%s) and was not written by this export", e.Target, e.What)
}

// Writer writes content out of a store.
type Writer struct {
	St   *store.Store
	Refs *archive.Refs
	// Expect, when set, is the sha256 a file or archive written must have
	// (what the plan promised): a different one fails the Write before
	// anything is visible at the target.
	Expect *digest.Sum
	// Scratch skips flushing what is written to disk: for a directory
	// nobody keeps after a crash (a build's inputs), not for an export.
	Scratch bool
	// Reused counts the files taken from the old content instead of the
	// store by the last Write; Fetched those read from the store; Kept the
	// paths of others carried over from the old content.
	Reused, Fetched, Kept int
	// Set aside is where paths others added to the old directory while the
	// new one was being written were left, when they could not be carried
	// over ("" when none were).
	SetAside string
	// Made identifies the directories the last Write of a Directory made,
	// for Remove to tell them from ones made again at the same paths; nil
	// when the system cannot tell (or for Scratch).
	Made *Dirs
}

// MismatchError is a file or archive whose sha256 is not the one expected.
type MismatchError struct {
	Target    string
	Want, Got digest.Sum
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the file for %s hashes to %s, not %s as planned; nothing was written there", e.Target, e.Got.Hex(), e.Want.Hex())
}

// ConflictError is a path someone else put inside an export that the new
// content needs, or that would be lost: the export does not write over it.
type ConflictError struct {
	Target string
	Paths  []string
	// Now is what the target itself has become ("a symbolic link"),
	// when it is the conflict, instead of Paths inside it.
	Now string
	Why string
}

func (e *ConflictError) Error() string {
	if e.Now != "" {
		return fmt.Sprintf("%s is now %s, which the export did not write; %s", e.Target, e.Now, e.Why)
	}
	names := strings.Join(e.Paths[:min(len(e.Paths), maxNamed)], ", ")
	if len(e.Paths) > maxNamed {
		names += fmt.Sprintf(" and %d more", len(e.Paths)-maxNamed)
	}
	return fmt.Sprintf("%s holds %s, which the export did not write; %s", e.Target, names, e.Why)
}

// Write writes c in format to target (from Target) atomically.
//
// With old nil the target must not exist: nothing is overwritten
// (*ExistsError). Otherwise old is the content this export wrote there
// before (with its listing, for a Directory), and the new content replaces
// it in one rename; what someone else added inside the old directory (any
// path its listing does not name) is carried over into the new one by
// hard link before the swap, so no crash can lose it — unless the new
// content needs that path, or is not a directory: then nothing is written
// (*ConflictError). Files of the old content that hash to what the new
// one needs are copied locally instead of read from the store.
//
// check runs on the target just before the rename; an error stops the
// write. It returns the sha256 of the file written (zero for Directory).
func (w *Writer) Write(ctx context.Context, c *Content, format Format, target string, old *Content, check func() error) (digest.Sum, error) {
	var sum digest.Sum
	w.Reused, w.Fetched, w.Kept, w.SetAside, w.Made = 0, 0, 0, "", nil
	if old != nil {
		// What stands at the target must still be of the export's kind:
		// the user's own directory where a file was written (or the
		// reverse) is never swapped out and removed.
		fi, err := os.Lstat(target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			old = nil // gone: written as new
		case err != nil:
			return sum, err
		case format.IsTree() && !fi.IsDir(), !format.IsTree() && !fi.Mode().IsRegular():
			return sum, &ConflictError{Target: target, Now: digest.TypeName(fi.Mode().Type()),
				Why: "the export wrote a " + string(format) + " there, and does not replace what someone else put in its place. Move it away first"}
		}
	}
	var others []string
	if old != nil && old.Listing != nil {
		var err error
		if others, err = othersIn(ctx, target, old.Listing); err != nil {
			return sum, err
		}
		if len(others) > 0 && !format.IsTree() {
			return sum, &ConflictError{Target: target, Paths: others, Why: "a " + string(format) + " cannot hold them. Move them away first"}
		}
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return sum, err
	}
	prefix := "." + filepath.Base(target) + ".tmp-"
	tmpfile.Sweep(parent, prefix) // left by a killed apply
	var tmp string
	var err error
	if format.IsTree() {
		tmp, err = tmpfile.MkdirTemp(parent, prefix)
		if err == nil {
			err = w.writeTree(ctx, c, tmp, target, old != nil, others)
		}
	} else {
		tmp, sum, err = w.writeFile(ctx, c, format, parent, prefix)
	}
	swapped := false
	if tmp != "" {
		// Before the swap: the new content, never visible. After it: the
		// old content, cleaned by settleOld.
		defer func() {
			if !swapped {
				_ = os.RemoveAll(tmp) // RemoveAll never follows symlinks
			}
		}()
	}
	if err != nil {
		return sum, err
	}
	if format.IsTree() && !w.Scratch {
		w.Made = madeDirs(tmp, c.Listing) // the same directories once renamed
	}
	if w.Expect != nil && !format.IsTree() && sum != *w.Expect {
		return sum, &MismatchError{Target: target, Want: *w.Expect, Got: sum}
	}
	if check != nil {
		if err := check(); err != nil {
			return sum, err
		}
	}
	if old == nil {
		if err := renameNoReplace(tmp, target); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return sum, &ExistsError{Target: target, What: "it appeared while the export was written"}
			}
			return sum, err
		}
		w.syncRename(parent)
		return sum, nil
	}
	if err := exchange(tmp, target); err != nil {
		return sum, err
	}
	swapped = true
	w.syncRename(parent)
	if !format.IsTree() {
		return sum, os.Remove(tmp) // the old file, which the export wrote
	}
	return sum, w.settleOld(ctx, tmp, target, old)
}

func (w *Writer) writeFile(ctx context.Context, c *Content, format Format, parent, prefix string) (string, digest.Sum, error) {
	var sum digest.Sum
	f, err := tmpfile.Create(parent, prefix)
	if err != nil {
		return "", sum, err
	}
	name := f.Name()
	defer func() { _ = f.Close() }() // closed below on success
	switch format {
	case File:
		rc, err := w.St.OpenBlob(ctx, c.Digest)
		if err != nil {
			return name, sum, err
		}
		_, err = digest.Copy(ctx, f, rc) // fails unless the bytes hash to the digest
		_ = rc.Close()                   // read-only; verified
		if err != nil {
			return name, sum, err
		}
		sum = c.Digest
		w.Fetched++
	case DockerArchive:
		// Every member is checked against its digest as it streams.
		h := sha256.New()
		if err := writeTar(ctx, io.MultiWriter(f, h), c.Listing, c.opener(w.St)); err != nil {
			return name, sum, err
		}
		h.Sum(sum[:0])
		w.Fetched++
	default:
		// A stored archive is copied (and checked); otherwise the archive is
		// built from the store's verified blobs straight into the file,
		// without writing to the store: an export only reads it.
		sum, err = w.Refs.Lookup(ctx, archive.Format(format), c.Listing)
		switch {
		case err == nil:
			if err := w.Refs.CopyTo(ctx, f, archive.Format(format), c.Listing, sum); err != nil {
				return name, sum, err
			}
		case errors.Is(err, store.ErrNotFound):
			h := sha256.New()
			if err := archive.Write(ctx, io.MultiWriter(f, h), archive.Format(format), c.Listing, StoreOpener(w.St)); err != nil {
				return name, sum, err
			}
			h.Sum(sum[:0])
		default:
			return name, sum, err
		}
		w.Fetched++
	}
	if err := f.Chmod(0o644); err != nil {
		return name, sum, err
	}
	if err := w.flush(f); err != nil {
		return name, sum, err
	}
	return name, sum, f.Close()
}

// writeTree writes the listing's entries under tmp, then links the others'
// paths of the old content at target into it. With replace, a file of the
// old content whose bytes hash to an entry's digest is copied from there
// instead of read from the store.
func (w *Writer) writeTree(ctx context.Context, c *Content, tmp, target string, replace bool, others []string) error {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	var old *os.Root // the content being replaced, whose files may be reused
	if fi, err := os.Lstat(target); replace && err == nil && fi.IsDir() {
		if old, err = os.OpenRoot(target); err == nil {
			defer func() { _ = old.Close() }()
		}
	}
	dirs := map[string]bool{}
	links := archive.Links(c.Listing)
	var files []digest.Entry
	for _, e := range c.Listing.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := archive.CheckEntryName(e.Path); err != nil {
			return err
		}
		if d := path.Dir(e.Path); d != "." && !dirs[d] {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for p := d; p != "." && !dirs[p]; p = path.Dir(p) {
				dirs[p] = true
			}
		}
		if e.Kind == digest.KindSymlink {
			t, err := archive.ReadTarget(ctx, StoreOpener(w.St), e, links)
			if err != nil {
				return err
			}
			if err := root.Symlink(t, e.Path); err != nil {
				return err
			}
			continue
		}
		files = append(files, e)
	}
	if err := w.writeEntries(ctx, root, files, old, c.opener(w.St)); err != nil {
		return err
	}
	// Directories get 0755 whatever the umask, like the files' modes.
	for d := range dirs {
		if err := root.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	if err := w.carryOver(target, tmp, root, c.Listing, others); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if w.Scratch {
		return nil
	}
	return syncTree(root, tmp, c.Listing)
}

// syncRename makes the rename into parent durable, unless Scratch.
func (w *Writer) syncRename(parent string) {
	if !w.Scratch {
		syncDir(parent)
	}
}

func (w *Writer) flush(f *os.File) error {
	if w.Scratch {
		return nil
	}
	return f.Sync()
}

// writeEntries writes the files of a tree, as many at once as the store
// reads (S3: its max_concurrency), so a download is not a round trip per
// file in turn. The first failure stops the others.
func (w *Writer) writeEntries(ctx context.Context, root *os.Root, files []digest.Entry, old *os.Root, open archive.Opener) error {
	var mu sync.Mutex
	return store.ForEach(ctx, w.St.Concurrency(), len(files), func(ctx context.Context, i int) error {
		return w.writeEntry(ctx, root, files[i], old, open, &mu)
	})
}

// writeEntry writes one file, read through open unless the old content
// has it; mu guards the Writer's counters.
func (w *Writer) writeEntry(ctx context.Context, root *os.Root, e digest.Entry, old *os.Root, open archive.Opener, mu *sync.Mutex) error {
	perm := fs.FileMode(0o644)
	if e.Kind == digest.KindExec {
		perm = 0o755
	}
	f, err := root.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // closed below on success
	if copyLocal(ctx, f, old, e) {
		mu.Lock()
		w.Reused++
		mu.Unlock()
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		rc, err := open(ctx, e)
		if err != nil {
			return fmt.Errorf("file %q: %w", e.Path, err)
		}
		n, err := digest.Copy(ctx, f, rc) // fails unless the bytes hash to the digest
		_ = rc.Close()                    // read-only; verified
		if err != nil {
			return fmt.Errorf("file %q: %w", e.Path, err)
		}
		if n != e.Size {
			return fmt.Errorf("file %q: read %d bytes, the listing says %d", e.Path, n, e.Size)
		}
		mu.Lock()
		w.Fetched++
		mu.Unlock()
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	return f.Close()
}

// copyLocal copies the entry's path in the old content (old, a root at
// the target) into f and reports whether it was a regular file hashing to
// the entry's digest; on false f holds junk, truncated by the caller.
func copyLocal(ctx context.Context, f *os.File, old *os.Root, e digest.Entry) bool {
	if old == nil {
		return false
	}
	fi, err := old.Lstat(e.Path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size {
		return false
	}
	src, err := openRegular(old, e.Path, fi)
	if err != nil {
		return false
	}
	defer func() { _ = src.Close() }() // read-only
	h := sha256.New()
	n, err := digest.Copy(ctx, io.MultiWriter(f, h), src)
	if err != nil || n != e.Size {
		return false
	}
	var sum digest.Sum
	h.Sum(sum[:0])
	return sum == e.SHA256
}
