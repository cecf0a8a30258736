package release

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// Listings returns the tree listing of an artifact digest, or nil and no
// error when the digest names no stored tree (a file or inline-content
// artifact, or one not in the store).
type Listings func(ctx context.Context, sum digest.Sum) (*digest.Listing, error)

// StoreListings reads listings from st: one verified read of the tree's
// listing per digest, never a request per file. A digest that names a
// stored blob (a file or inline-content artifact) has no listing (nil); one
// that names nothing stored is an error: a directory artifact whose
// listing is gone must not pass for a file.
func StoreListings(st *store.Store) Listings {
	return func(ctx context.Context, sum digest.Sum) (*digest.Listing, error) {
		m, err := st.GetListing(ctx, sum)
		if !errors.Is(err, store.ErrNotFound) {
			return m, err
		}
		switch kind, lerr := st.Lookup(ctx, sum); {
		case lerr != nil:
			return nil, lerr
		case kind == store.Blob:
			return nil, nil
		}
		return nil, fmt.Errorf("%s is neither a stored tree listing nor a stored blob in %s: the artifact cannot be compared (%w)", sum, st, store.ErrNotFound)
	}
}

// Diff is what changed from one record to another.
type Diff struct {
	ArtifactsAdded   map[string]string // name → digest in the newer record
	ArtifactsRemoved map[string]string // name → digest in the older record
	ArtifactsChanged map[string]ArtifactChange
	MetadataAdded    map[string]string // key → value in the newer record
	MetadataRemoved  map[string]string // key → value in the older record
	MetadataChanged  map[string]ValueChange
	ImagesAdded      map[string]string // name → reference in the newer record
	ImagesRemoved    map[string]string // name → reference in the older record
	// ImagesChanged are the images with another reference; their layers
	// are compared by CompareLayers.
	ImagesChanged map[string]ImageChange
}

// ValueChange is a value in the older and in the newer record.
type ValueChange struct {
	From, To string
}

// ArtifactChange is an artifact present in both records with other digests.
type ArtifactChange struct {
	From, To string
	// Files compares the two listings when both digests name stored
	// trees; nil otherwise (a file artifact reports only its digests).
	Files *FileChanges
}

// FileChanges compares two tree listings.
type FileChanges struct {
	// Added, Removed and Changed count every file (or symlink) added,
	// removed, and changed in content or kind.
	Added, Removed, Changed int
	// Lines are the first changes in path order, at most the limit given
	// to Compare: "+ path", "- path" or "~ path".
	Lines []string
}

// Total is the number of changed paths, listed or not.
func (f *FileChanges) Total() int { return f.Added + f.Removed + f.Changed }

// CompareListings compares two listings, keeping at most limit lines.
func CompareListings(older, newer *digest.Listing, limit int) *FileChanges {
	f := &FileChanges{Lines: []string{}}
	line := func(s string) {
		if len(f.Lines) < limit {
			f.Lines = append(f.Lines, s)
		}
	}
	o, n := older.Entries, newer.Entries
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		switch {
		case j == len(n) || (i < len(o) && o[i].Path < n[j].Path):
			f.Removed++
			line("- " + o[i].Path)
			i++
		case i == len(o) || n[j].Path < o[i].Path:
			f.Added++
			line("+ " + n[j].Path)
			j++
		default:
			if o[i].SHA256 != n[j].SHA256 || o[i].Kind != n[j].Kind {
				f.Changed++
				line("~ " + n[j].Path)
			}
			i++
			j++
		}
	}
	return f
}

// Compare returns what changed from the record older to the record newer
// (of any two versions, in either order). For each artifact whose digest
// changed and names a tree on both sides, the two listings are read once
// each through listings and compared file by file, keeping at most limit
// lines per artifact (the counts are always complete). Images added,
// removed and changed are compared by reference; CompareLayers compares a
// changed image's layers.
func Compare(ctx context.Context, older, newer *Record, listings Listings, limit int) (*Diff, error) {
	d := &Diff{
		ArtifactsAdded: map[string]string{}, ArtifactsRemoved: map[string]string{}, ArtifactsChanged: map[string]ArtifactChange{},
		MetadataAdded: map[string]string{}, MetadataRemoved: map[string]string{}, MetadataChanged: map[string]ValueChange{},
	}
	d.compareImages(older, newer)
	for k, v := range newer.Metadata {
		if was, ok := older.Metadata[k]; !ok {
			d.MetadataAdded[k] = v
		} else if was != v {
			d.MetadataChanged[k] = ValueChange{From: was, To: v}
		}
	}
	for k, v := range older.Metadata {
		if _, ok := newer.Metadata[k]; !ok {
			d.MetadataRemoved[k] = v
		}
	}
	for k, v := range older.Artifacts {
		if _, ok := newer.Artifacts[k]; !ok {
			d.ArtifactsRemoved[k] = v
		}
	}

	names := make([]string, 0, len(newer.Artifacts))
	for k, v := range newer.Artifacts {
		was, ok := older.Artifacts[k]
		switch {
		case !ok:
			d.ArtifactsAdded[k] = v
		case was != v:
			names = append(names, k)
		}
	}
	sort.Strings(names) // errors name the first artifact, always the same one

	read := map[string]*digest.Listing{} // a tree shared by artifacts is read once
	listing := func(s string) (*digest.Listing, error) {
		if m, ok := read[s]; ok {
			return m, nil
		}
		sum, err := digest.Parse(s)
		if err != nil {
			return nil, err
		}
		m, err := listings(ctx, sum)
		if err != nil {
			return nil, err
		}
		read[s] = m
		return m, nil
	}
	for _, k := range names {
		c := ArtifactChange{From: older.Artifacts[k], To: newer.Artifacts[k]}
		from, err := listing(c.From)
		if err != nil {
			return nil, fmt.Errorf("artifact %q of %s@%s: %w", k, older.Name, older.Version, err)
		}
		if from != nil {
			to, err := listing(c.To)
			if err != nil {
				return nil, fmt.Errorf("artifact %q of %s@%s: %w", k, newer.Name, newer.Version, err)
			}
			if to != nil {
				c.Files = CompareListings(from, to, limit)
			}
		}
		d.ArtifactsChanged[k] = c
	}
	return d, nil
}

// ArtifactChanges are the artifacts that differ from older to newer, one
// line each in name order: "+ name <digest>" (added), "- name <digest>"
// (removed) or "~ name <old> -> <new>" (another digest). The digests make
// each version's lines its own, so a plan never hides them as unchanged
// when two versions in a row change the same artifacts. It reads nothing.
func ArtifactChanges(older, newer map[string]string) []string {
	var lines []string
	show := usertext.Show // names and digests as the store has them: escaped if need be
	for k, v := range newer {
		if was, ok := older[k]; !ok {
			lines = append(lines, "+ "+show(k)+" "+show(v))
		} else if was != v {
			lines = append(lines, "~ "+show(k)+" "+show(was)+" -> "+show(v))
		}
	}
	for k, v := range older {
		if _, ok := newer[k]; !ok {
			lines = append(lines, "- "+show(k)+" "+show(v))
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][2:] < lines[j][2:] })
	return lines
}
