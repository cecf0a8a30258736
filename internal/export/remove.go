package export

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Kept is a path Remove left in place, and why.
type Kept struct {
	Path string // slash-separated, relative to the target; the target itself as given
	Why  string // "changed since the export wrote it", "not written by the export", …
}

func (k Kept) String() string { return k.Path + " (" + k.Why + ")" }

// KeptFor is the paths kept for one reason.
type KeptFor struct {
	Why   string
	Paths []string
}

// GroupKept groups what Remove kept by why, the reasons in the order they
// first appear in kept and each one's paths in kept's order (Remove's:
// the export's own paths first).
func GroupKept(kept []Kept) []KeptFor {
	var groups []KeptFor
	at := map[string]int{}
	for _, k := range kept {
		i, ok := at[k.Why]
		if !ok {
			i = len(groups)
			at[k.Why] = i
			groups = append(groups, KeptFor{Why: k.Why})
		}
		groups[i].Paths = append(groups[i].Paths, k.Path)
	}
	return groups
}

// Why a path is kept.
const (
	keptChanged = "changed since the export wrote it"
	keptOthers  = "not written by the export"
	keptRemade  = "a directory made again since the export wrote it"
)

// cannot says why a path could not be checked or read: the system's
// reason, without the path (the same for many paths).
func cannot(what string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return "cannot be " + what + " (" + err.Error() + ")"
}

func keptNow(fi fs.FileInfo, was string) string {
	return "now " + digest.TypeName(fi.Mode().Type()) + ", not the " + was + " the export wrote"
}

// Remove deletes what an export of c in format wrote at target, and only
// what is still byte for byte what it wrote: a file (or a listed file of a
// Directory) whose bytes hash to what was written, whatever its mode; a
// listed symlink with the same target; a directory of the listing once
// empty, if it is the one the export made (c.Made; any empty one when that
// is not recorded). Each file is read through a descriptor that does not
// follow links, and its name removed only if it still names that file,
// unchanged since. Nothing at target is followed, nor a directory above
// it that became a link (target is as Target gave it). It returns what it
// left in place and why: the export's paths changed or replaced and its
// directories made again, then paths others added, each sorted (a
// directory that still holds any of these is kept without being named).
func Remove(ctx context.Context, target string, format Format, c *Content) ([]Kept, error) {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	}
	// target is a real path (Target resolved it at write): a directory
	// above it replaced by a link since leads somewhere else.
	if resolved, err := Target(target); err != nil {
		return nil, err
	} else if resolved != target {
		return []Kept{{target, "reached through a symbolic link now, at " + resolved + ": not where the export wrote"}}, nil
	}
	if format.IsTree() {
		if !fi.IsDir() {
			return []Kept{{target, keptNow(fi, "directory")}}, nil
		}
		return removeTree(ctx, target, fi, c.Listing, true, c.Made)
	}
	if c.Written == nil {
		return []Kept{{target, "what the export wrote there is not recorded"}}, nil
	}
	root, err := os.OpenRoot(filepath.Dir(target))
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	name := filepath.Base(target)
	if fi, err = root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	why, err := removeIfWritten(ctx, root, name, fi, digest.Entry{Kind: digest.KindFile, SHA256: *c.Written, Size: -1})
	if why != "" {
		return []Kept{{target, why}}, err
	}
	return nil, err
}

// removeTree removes the paths of the listing m from the directory target
// (found as fi), then the directories they imply when empty, then target
// when empty. With verify (destroy) only what is still what the export
// wrote goes (removeIfWritten), a directory only if made says the export
// made it, and what others added is named; without (the export's own tree
// an update swapped out) every listed path goes.
func removeTree(ctx context.Context, target string, fi fs.FileInfo, m *digest.Listing, verify bool, made *Dirs) ([]Kept, error) {
	root, err := os.OpenRoot(target)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	if rfi, err := root.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		return []Kept{{target, "replaced while it was being removed"}}, nil //nolint:nilerr // kept either way
	}
	var kept []Kept
	named := map[string]bool{}
	keep := func(p, why string) {
		kept = append(kept, Kept{p, why})
		named[strings.TrimSuffix(p, "/")] = true
	}
	dirs := map[string]bool{}
	isDir := map[string]bool{".": true}
	for _, e := range m.Entries {
		if err := ctx.Err(); err != nil {
			return kept, err
		}
		for d := path.Dir(e.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		if !realDirs(root, path.Dir(e.Path), isDir) {
			// A directory of the export's replaced by a link (to another
			// directory inside, say): what is under it is not the export's.
			// The link is named below.
			continue
		}
		fi, err := root.Lstat(e.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			continue // gone, or under a file someone put where a directory was
		case err != nil:
			keep(e.Path, cannot("checked", err))
			continue
		case fi.IsDir():
			keep(e.Path+"/", keptNow(fi, "file"))
			continue
		case !verify:
			if err := root.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return kept, err
			}
			continue
		}
		why, err := removeIfWritten(ctx, root, e.Path, fi, e)
		if why != "" {
			keep(e.Path, why)
		}
		if err != nil {
			return kept, err
		}
	}
	order := make([]string, 0, len(dirs))
	for d := range dirs {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return len(order[i]) > len(order[j]) }) // deepest first
	for _, d := range order {
		if !realDirs(root, path.Dir(d), isDir) {
			continue // under a link: not the export's
		}
		fi, err := root.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			keep(d+"/", cannot("checked", err))
			continue
		case !fi.IsDir():
			keep(d, keptNow(fi, "directory"))
			continue
		}
		if verify {
			if ok, err := made.madeAt(root, d, fi, false); err != nil {
				keep(d+"/", cannot("read", err))
				continue
			} else if !ok {
				keep(d+"/", keptRemade)
				continue
			}
		}
		if err := root.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) && !notEmpty(err) && !holdsAny(root, d) {
			return kept, err
		}
	}
	ours := true
	if verify {
		var err error
		if ours, err = made.madeAt(root, ".", fi, true); err != nil {
			keep(target, cannot("read", err))
		} else if !ours {
			keep(target, keptRemade)
		}
	}
	if ours {
		if err := removeEmpty(target, fi); err != nil {
			return kept, err
		}
	}
	if verify {
		// A listed path found again (put back while the rest was removed)
		// is named too, with what others added.
		for _, e := range m.Entries {
			if named[e.Path] || !realDirs(root, path.Dir(e.Path), isDir) {
				continue
			}
			if _, err := root.Lstat(e.Path); err == nil {
				keep(e.Path, keptChanged)
			}
		}
		others, err := walkOthers(ctx, target, m, func(rel string, err error) {
			if !named[rel] {
				keep(rel+"/", cannot("read", err))
			}
		})
		if err != nil {
			return kept, err
		}
		for _, o := range others {
			if !named[strings.TrimSuffix(o, "/")] {
				keep(o, keptOthers)
			}
		}
	}
	// The export's own paths first, then what others added.
	sort.SliceStable(kept, func(i, j int) bool {
		if oi, oj := kept[i].Why == keptOthers, kept[j].Why == keptOthers; oi != oj {
			return oj
		}
		return kept[i].Path < kept[j].Path
	})
	return kept, nil
}

// removeIfWritten removes name in root, found as fi, if it still is what
// e says the export wrote: for a symlink, a symlink to the same target; for
// a file, a regular file with the same bytes (its mode aside; e.Size < 0
// when not known). The file is hashed through a descriptor opened without
// following links, and its name removed only if it still names that file,
// unchanged since it was found. It returns why the path was kept, "" when
// it was removed (or is gone).
func removeIfWritten(ctx context.Context, root *os.Root, name string, fi fs.FileInfo, e digest.Entry) (string, error) {
	switch {
	case e.Kind == digest.KindSymlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return keptNow(fi, "symbolic link"), nil
		}
		t, err := root.Readlink(name)
		if err != nil {
			return cannot("checked", err), nil //nolint:nilerr // kept, saying why
		}
		if digest.Bytes([]byte(t)) != e.SHA256 {
			return keptChanged, nil
		}
	case !fi.Mode().IsRegular():
		return keptNow(fi, "file"), nil
	case e.Size >= 0 && fi.Size() != e.Size:
		return keptChanged, nil
	default:
		f, err := openRegular(root, name, fi)
		var changed *digest.ChangedError
		switch {
		case errors.As(err, &changed):
			return keptChanged, nil
		case err != nil:
			return cannot("read to check it", err), nil //nolint:nilerr // kept, saying why
		}
		sum, _, err := digest.HashReader(ctx, f)
		_ = f.Close() // read-only
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil:
			return cannot("read to check it", err), nil //nolint:nilerr // kept, saying why
		case sum != e.SHA256:
			return keptChanged, nil
		}
	}
	if checkedHook != nil {
		checkedHook(name)
	}
	// Written to, or replaced, since it was found: the change is someone's.
	now, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return cannot("checked", err), nil //nolint:nilerr // kept, saying why
	case !os.SameFile(fi, now) || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) || now.Mode() != fi.Mode():
		return keptChanged, nil
	}
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return "", nil
}

// checkedHook, set by tests only, runs when removeIfWritten has checked a
// path and is about to remove it.
var checkedHook func(name string)

// removeEmpty removes the directory target, found as fi, if it is still
// that directory and empty.
func removeEmpty(target string, fi fs.FileInfo) error {
	now, err := os.Lstat(target)
	if err != nil || !os.SameFile(fi, now) {
		return nil //nolint:nilerr // gone or replaced: nothing of the export's to remove
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if notEmpty(err) {
			return nil // holds what is kept, named apart
		}
		if f, oerr := os.Open(target); oerr == nil {
			names, _ := f.Readdirnames(1)
			_ = f.Close() // read-only
			if len(names) > 0 {
				return nil // holds what is kept, named apart
			}
		}
		return err
	}
	return nil
}

// notEmpty reports whether err says a directory removed is not empty.
func notEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// holdsAny reports whether the directory d in root has any entry.
func holdsAny(root *os.Root, d string) bool {
	f, err := root.Open(d)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // read-only
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

// realDirs reports whether dir and every directory above it inside root
// are directories, not symlinks (os.Root follows a link that stays inside
// it). known caches the answers.
func realDirs(root *os.Root, dir string, known map[string]bool) bool {
	if ok, seen := known[dir]; seen {
		return ok
	}
	ok := realDirs(root, path.Dir(dir), known)
	if ok {
		// A directory that is gone holds nothing to remove: fine.
		fi, err := root.Lstat(dir)
		ok = (err == nil && fi.IsDir()) || errors.Is(err, fs.ErrNotExist)
	}
	known[dir] = ok
	return ok
}
