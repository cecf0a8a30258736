package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// settleOld removes from old, the directory swapped out of target, what
// the export wrote there (old's listing; nothing followed through a
// link). What is left was put there by others: what was carried over
// before the swap is the same file in the new tree, and goes; what they
// added while the new tree was written is linked into it at the same path
// when that is free. Anything still left is kept, renamed to a visible
// sibling of target (w.SetAside), never deleted.
func (w *Writer) settleOld(ctx context.Context, old, target string, c *Content) error {
	if c.Listing != nil {
		// The export's own tree, which the plan said it writes again: its
		// listed paths go whatever they hold now.
		fi, err := os.Lstat(old)
		if err != nil {
			return err
		}
		if _, err := removeTree(ctx, old, fi, c.Listing, false, nil); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(old); errors.Is(err, fs.ErrNotExist) {
		return nil // everything was the export's
	}
	var rest []string
	err := filepath.WalkDir(old, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(old, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(target, rel)
		if fi, err := os.Lstat(dst); err == nil {
			if pi, err := d.Info(); err == nil && sameEntry(p, dst, pi, fi) {
				return os.Remove(p) // carried over before the swap
			}
			rest = append(rest, rel)
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err == nil && linkEntry(p, dst) == nil {
			w.Kept++
			return os.Remove(p)
		}
		rest = append(rest, rel)
		return nil
	})
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return os.RemoveAll(old) // only empty directories are left
	}
	aside, err := os.MkdirTemp(filepath.Dir(target), filepath.Base(target)+".set-aside-")
	if err != nil {
		return err
	}
	if err := os.Rename(old, filepath.Join(aside, filepath.Base(target))); err != nil {
		return err
	}
	w.SetAside = aside
	return nil
}

// othersIn lists, slash-separated and sorted, what is inside the directory
// target that the listing m does not name: files, links and directories
// someone else put there (a directory of someone else's is one path,
// carried over whole). The directories m's paths imply are the export's.
func othersIn(ctx context.Context, target string, m *digest.Listing) ([]string, error) {
	return walkOthers(ctx, target, m, nil)
}

// walkOthers is othersIn; a directory inside target that cannot be read
// is passed to unreadable, when given, instead of failing the walk.
func walkOthers(ctx context.Context, target string, m *digest.Listing, unreadable func(rel string, err error)) ([]string, error) {
	fi, err := os.Lstat(target)
	if err != nil || !fi.IsDir() {
		return nil, nil //nolint:nilerr // nothing there, or not a directory: nothing of others' inside
	}
	ours := map[string]bool{}
	dirs := map[string]bool{}
	for _, e := range m.Entries {
		ours[e.Path] = true
		for d := path.Dir(e.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var others []string
	err = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil && unreadable != nil && p != target {
			if rel, rerr := filepath.Rel(target, p); rerr == nil {
				unreadable(filepath.ToSlash(rel), err)
				return nil // nothing more of it is seen
			}
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == target {
			return nil
		}
		rel, err := filepath.Rel(target, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && dirs[rel]:
			return nil
		case ours[rel] && !d.IsDir():
			return nil
		}
		if d.IsDir() {
			others = append(others, rel+"/")
			return fs.SkipDir // carried over whole
		}
		others = append(others, rel)
		return nil
	})
	sort.Strings(others)
	return others, err
}

// sameEntry reports whether b is what carryOver made of a: the same file
// (a hard link), or a symlink with the same target.
func sameEntry(a, b string, ai, bi fs.FileInfo) bool {
	if ai.Mode()&fs.ModeSymlink == 0 || bi.Mode()&fs.ModeSymlink == 0 {
		return os.SameFile(ai, bi)
	}
	at, aerr := os.Readlink(a)
	bt, berr := os.Readlink(b)
	return aerr == nil && berr == nil && at == bt
}

// carryOver links what others put in the old content at target into the
// new tree at the same paths, refusing (before anything is visible) a path
// the new content needs.
func (w *Writer) carryOver(target, tmp string, root *os.Root, m *digest.Listing, others []string) error {
	if len(others) == 0 {
		return nil
	}
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, e := range m.Entries {
		files[e.Path] = true
		for d := path.Dir(e.Path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var conflicts []string
	for _, o := range others {
		name := strings.TrimSuffix(o, "/")
		// A path the new tree has as a file, or (for a file of others') as
		// a directory, or one under a file of the new tree.
		clash := files[name] || (dirs[name] && !strings.HasSuffix(o, "/"))
		for d := path.Dir(name); d != "." && !clash; d = path.Dir(d) {
			clash = files[d]
		}
		if clash {
			conflicts = append(conflicts, o)
		}
	}
	if len(conflicts) > 0 {
		return &ConflictError{Target: target, Paths: conflicts, Why: "the new content has a file or directory at that path. Move them away first"}
	}
	for _, o := range others {
		name := strings.TrimSuffix(o, "/")
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := linkTree(filepath.Join(target, filepath.FromSlash(name)), filepath.Join(tmp, filepath.FromSlash(name))); err != nil {
			var exists *os.LinkError
			if errors.As(err, &exists) && errors.Is(err, fs.ErrExist) {
				// A directory of others' that the new content has too, holding
				// a path the new content needs.
				rel, rerr := filepath.Rel(tmp, exists.New)
				if rerr != nil {
					rel = o
				}
				return &ConflictError{Target: target, Paths: []string{filepath.ToSlash(rel)},
					Why: "the new content has a file at that path. Move it away first"}
			}
			if errors.Is(err, fs.ErrPermission) {
				return &ConflictError{Target: target, Paths: []string{o},
					Why: "it cannot be carried over by hard link (owned by another user, where fs.protected_hardlinks is set?). Move it away, or deploy as its owner"}
			}
			return fmt.Errorf("carrying %s over into the new content: %w", o, err)
		}
		w.Kept++
	}
	return nil
}

// linkTree recreates from at to: directories as new directories (same
// mode; merged into one the new tree already has), everything else as a
// hard link to the same file, so its data is never copied and survives in
// whichever tree a crash leaves.
func linkTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if !d.IsDir() {
			return linkEntry(p, dst)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Mkdir(dst, fi.Mode().Perm()); errors.Is(err, fs.ErrExist) {
			return nil // a directory the new tree has too: its own mode stays
		} else if err != nil {
			return err
		}
		return os.Chmod(dst, fi.Mode().Perm())
	})
}
