package export

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Check refuses a format the content cannot take, and a tree holding a
// name that cannot be created safely or a symlink that leaves the tree
// (whoever serves or unpacks the export would follow it out). It reads the
// blob of every symlink (its target), nothing else.
func Check(ctx context.Context, st *store.Store, c *Content, format Format) error {
	switch {
	case format.IsImage() && c.Image != nil:
		return nil // its listing is made of digests and fixed names
	case c.Image != nil, format.IsImage():
		return &FormatError{Format: format, Kind: c.Kind}
	case c.Kind == store.Blob && format != File,
		c.Kind == store.Tree && format == File:
		return &FormatError{Format: format, Kind: c.Kind}
	case c.Kind == store.Blob:
		return nil
	}
	links := archive.Links(c.Listing)
	for _, e := range c.Listing.Entries {
		if err := archive.CheckEntryName(e.Path); err != nil {
			return err
		}
		if e.Kind != digest.KindSymlink {
			continue
		}
		if _, err := archive.ReadTarget(ctx, StoreOpener(st), e, links); err != nil {
			return err
		}
	}
	return nil
}

// FileSum is the sha256 of the single file an export in format writes:
// the blob itself for File; for an archive, the stored archive of the
// listing (verified) or, when none is stored yet, the archive built now
// from the store and hashed without being stored — the archiver is
// deterministic, so Write produces the same bytes. A Directory or
// OCILayout has none (ok is false); nor has a DockerArchive before it is
// written: its sum needs every layer's bytes, a base's read from its
// registry.
func FileSum(ctx context.Context, refs *archive.Refs, st *store.Store, c *Content, format Format) (sum digest.Sum, ok bool, err error) {
	switch format {
	case Directory, OCILayout, DockerArchive:
		return sum, false, nil
	case File:
		return c.Digest, true, nil
	}
	sum, err = refs.Lookup(ctx, archive.Format(format), c.Listing)
	if !errors.Is(err, store.ErrNotFound) {
		return sum, err == nil, err
	}
	h := sha256.New()
	if err := archive.Write(ctx, h, archive.Format(format), c.Listing, StoreOpener(st)); err != nil {
		return sum, false, err
	}
	h.Sum(sum[:0])
	return sum, true, nil
}

// Target returns the absolute path an export to p writes: p's parent
// resolved as the kernel walks it (fsguard.Resolve), its last component
// as written and never followed, so a symlink there is replaced or
// refused, not written through.
func Target(p string) (string, error) {
	if err := fsguard.CheckEntryName(p); err != nil {
		return "", err
	}
	// Split as written: filepath.Dir would clean "link/../x" to "." first,
	// cancelling ".." against the link's name instead of its target.
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	parent, err := fsguard.Resolve(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, base), nil
}

// CheckPlace refuses a target inside a content-addressed store (any local
// one: fsguard.StoreAbove), one that is or holds storeRoot (the configured
// local store, "" for none) or any other store, and one whose nearest
// existing ancestor is not a directory.
func CheckPlace(target, storeRoot string) error {
	if storeRoot != "" {
		if _, in, err := fsguard.Rel(target, storeRoot); err != nil {
			return err
		} else if in {
			return &fsguard.RefusedError{Target: target, Reason: "is inside the store " + storeRoot + ", whose objects are never overwritten"}
		}
		if _, in, err := fsguard.Rel(storeRoot, target); err != nil {
			return err
		} else if in {
			return &fsguard.RefusedError{Target: target, Reason: "holds the store " + storeRoot + ": replacing it would move the store away"}
		}
	}
	if root, ok := fsguard.StoreAbove(filepath.Dir(target)); ok {
		return &fsguard.RefusedError{Target: target, Reason: "is inside the content-addressed store " + root + ", whose objects are never overwritten"}
	}
	if fsguard.IsStore(target) {
		return &fsguard.RefusedError{Target: target, Reason: "holds a content-addressed store (it has blobs/sha256): replacing it would destroy the store"}
	}
	return fsguard.CheckParents(target, target)
}

// CheckNew refuses a target where something exists already
// (*ExistsError naming what): a new export writes only new paths. A path
// that cannot be checked is left to the write, which refuses to replace
// anything.
func CheckNew(target string) error {
	if fi, err := os.Lstat(target); err == nil {
		return &ExistsError{Target: target, What: digest.TypeName(fi.Mode().Type())}
	}
	return nil
}

// CheckApart refuses a target inside the target other of another export,
// or holding it: replacing either would remove the other. The same target
// is not refused (nor checked) here.
func CheckApart(target, other string) error {
	if other == target {
		return nil
	}
	if _, in, _ := fsguard.Rel(target, other); in {
		return &fsguard.RefusedError{Target: target, Reason: "is inside " + other + ", which another immutable_export writes; replacing that one would remove this one"}
	} else if _, in, _ := fsguard.Rel(other, target); in {
		return &fsguard.RefusedError{Target: target, Reason: "holds " + other + ", which another immutable_export writes; replacing this one would remove that one"}
	}
	return nil
}
