package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Status is what Inspect found at a target.
type Status int

const (
	Absent  Status = iota // nothing there
	Matches               // the content, in the format
	Differs               // something else
)

// Found is what is at a target.
type Found struct {
	Status Status
	What   string // how it differs, for the plan: "index.html changed, css/site.css missing"
}

// TreeHasher hashes a directory the way the artifact resource does (the
// provider passes its stat-cached walk).
type TreeHasher func(ctx context.Context, dir string) (*digest.Listing, error)

// ListingLoader returns the listing of the tree an export wrote, when
// Inspect needs it to tell the export's own files from others'.
type ListingLoader func(ctx context.Context) (*digest.Listing, error)

// maxNamed bounds the paths a Found names.
const maxNamed = 5

// Inspect tells what is at target compared with what an export of want in
// format wrote there (want: the tree's digest for Directory and
// OCILayout, the file's sha256 otherwise). For a tree only the export's own entries count:
// files someone added beside them are not the export's, and not drift. The
// listing is loaded only when the directory does not hash to want as a
// whole. Nothing at the target is followed.
func Inspect(ctx context.Context, target string, format Format, want digest.Sum, hashTree TreeHasher, listing ListingLoader) (Found, error) {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Found{Status: Absent}, nil
	case err != nil:
		return Found{}, err
	}
	if !format.IsTree() {
		if !fi.Mode().IsRegular() {
			return Found{Status: Differs, What: target + " is " + digest.TypeName(fi.Mode().Type()) + ", not the file written"}, nil
		}
		sum, _, err := digest.HashListed(ctx, target, fi)
		switch {
		case ctx.Err() != nil:
			return Found{}, ctx.Err()
		case err != nil:
			return Found{Status: Differs, What: "the file cannot be read (" + err.Error() + ")"}, nil //nolint:nilerr // the answer is "differs"
		case sum != want:
			return Found{Status: Differs, What: "the file was changed (it hashes to " + sum.Hex() + ")"}, nil
		}
		return Found{Status: Matches}, nil
	}
	if !fi.IsDir() {
		return Found{Status: Differs, What: target + " is " + digest.TypeName(fi.Mode().Type()) + ", not the directory written"}, nil
	}
	onDisk, err := hashTree(ctx, target)
	if ctx.Err() != nil {
		return Found{}, ctx.Err()
	}
	if err == nil && onDisk.Digest() == want {
		return Found{Status: Matches}, nil
	}
	m, lerr := listing(ctx)
	if lerr != nil {
		return Found{}, lerr
	}
	var diffs []string
	if err == nil {
		diffs = compareListings(m, onDisk)
	} else if diffs, err = compareFiles(ctx, target, m); err != nil {
		return Found{}, err
	}
	if len(diffs) == 0 {
		return Found{Status: Matches}, nil
	}
	what := strings.Join(diffs[:min(len(diffs), maxNamed)], ", ")
	if len(diffs) > maxNamed {
		what += fmt.Sprintf(" and %d more", len(diffs)-maxNamed)
	}
	return Found{Status: Differs, What: what}, nil
}

func describe(e digest.Entry, got *digest.Entry) string {
	switch {
	case got == nil:
		return e.Path + " missing"
	case got.Kind != e.Kind:
		return e.Path + " changed type"
	}
	return e.Path + " changed"
}

// compareListings lists the entries of want that differ in have.
func compareListings(want, have *digest.Listing) []string {
	byPath := make(map[string]*digest.Entry, len(have.Entries))
	for i := range have.Entries {
		byPath[have.Entries[i].Path] = &have.Entries[i]
	}
	var diffs []string
	for _, e := range want.Entries {
		if got := byPath[e.Path]; got == nil || got.Kind != e.Kind || got.SHA256 != e.SHA256 {
			diffs = append(diffs, describe(e, got))
		}
	}
	return diffs
}

// compareFiles checks each entry of m on disk under target, for a tree
// that cannot be hashed whole (someone put a socket in it, say).
func compareFiles(ctx context.Context, target string, m *digest.Listing) ([]string, error) {
	root, err := os.OpenRoot(target)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }() // read-only
	var diffs []string
	for _, e := range m.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fi, err := root.Lstat(e.Path)
		if err != nil {
			diffs = append(diffs, describe(e, nil))
			continue
		}
		got := digest.Entry{Path: e.Path, Kind: digest.KindOf(fi.Mode()), Size: fi.Size()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			got.Kind = digest.KindSymlink
			t, err := root.Readlink(e.Path)
			if err == nil {
				got.SHA256 = digest.Bytes([]byte(t))
			}
		case !fi.Mode().IsRegular():
			got.Kind = digest.Kind(digest.TypeName(fi.Mode().Type())) // a directory, a pipe: no kind a listing has
		default:
			f, err := openRegular(root, e.Path, fi)
			if err == nil {
				got.SHA256, _, _ = digest.HashReader(ctx, f)
				_ = f.Close() // read-only
			}
		}
		if got.Kind != e.Kind || got.SHA256 != e.SHA256 {
			diffs = append(diffs, describe(e, &got))
		}
	}
	return diffs, nil
}
