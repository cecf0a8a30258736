// Package digest implements the immutable digest spec, version 1.
//
// A file, or inline content, has the digest "sha256:" + hex(sha256(bytes)):
// the same hex as sha256sum and Terraform's filesha256().
//
// A directory has the digest "sha256:" + hex(sha256(listing)), where the
// listing is the canonical text produced by Listing.Encode:
//
//	immutable-tree-v1\n
//	<kind> <sha256 hex> <size> <path>\n   (one line per entry)
//
// Entries are every regular file and symlink below the directory, ordered by
// the bytes of their slash-separated relative path. kind is "file", "exec"
// (a regular file whose owner-execute bit is set, as git records it) or
// "symlink" (hashed over its target string, never followed). Modification
// times, owners, other permission bits and empty directories do not count.
//
// The spec is frozen: nothing in this package may change the digest of any
// input. A future scheme gets a new header (immutable-tree-v2) and lives
// beside this one; TestGoldenDigests pins the output of v1.
//
// The package has no dependency on Terraform.
package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Prefix starts every digest string.
const Prefix = "sha256:"

// TreeHeader is the first line of a version 1 tree listing.
const TreeHeader = "immutable-tree-v1\n"

// Kind is the kind of a tree entry.
type Kind string

const (
	KindFile    Kind = "file"
	KindExec    Kind = "exec"
	KindSymlink Kind = "symlink"
)

func (k Kind) valid() bool { return k == KindFile || k == KindExec || k == KindSymlink }

// Sum is a raw sha256.
type Sum [sha256.Size]byte

// Hex returns the lower-case hex of the sum.
func (s Sum) Hex() string { return hex.EncodeToString(s[:]) }

// String returns the sum as a digest string, "sha256:<hex>".
func (s Sum) String() string { return Prefix + s.Hex() }

// Bytes returns the digest of inline content.
func Bytes(b []byte) Sum { return sha256.Sum256(b) }

// Parse reads a digest string of the form "sha256:<64 lower-case hex>".
func Parse(s string) (Sum, error) {
	var sum Sum
	h, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return sum, fmt.Errorf("%q is not a digest: it must start with %q", s, Prefix)
	}
	if len(h) != 2*sha256.Size || strings.ToLower(h) != h {
		return sum, fmt.Errorf("%q is not a digest: %q must be followed by 64 lower-case hex digits", s, Prefix)
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("%q is not a digest: %v", s, err)
	}
	return sum, nil
}

// ParseHex reads 64 lower-case hex digits.
func ParseHex(h string) (Sum, error) { return Parse(Prefix + h) }

// Entry is one regular file or symlink of a tree.
type Entry struct {
	// Path is relative to the tree's root, slash-separated, valid UTF-8,
	// without a newline.
	Path string
	Kind Kind
	// SHA256 is of the file's bytes, or of a symlink's target string.
	SHA256 Sum
	// Size is the file's length in bytes, or the length of a symlink's target.
	Size int64
}

// KindOf is the kind a regular file of mode m has in a listing: exec when
// its owner-execute bit is set, as git records it.
func KindOf(m fs.FileMode) Kind {
	if m.Perm()&0o100 != 0 {
		return KindExec
	}
	return KindFile
}

// FileListing is the one-entry listing of a single file named name: what
// an archive of a file source holds.
func FileListing(name string, m fs.FileMode, sum Sum, size int64) *Listing {
	return &Listing{Entries: []Entry{{Path: name, Kind: KindOf(m), SHA256: sum, Size: size}}}
}

// Listing is the content of a tree: its entries in canonical order.
type Listing struct {
	Entries []Entry
}

// CheckName reports whether a relative path can be part of a listing.
func CheckName(p string) error {
	if !utf8.ValidString(p) {
		return &NameError{Path: p, Reason: "is not valid UTF-8"}
	}
	if strings.ContainsRune(p, '\n') {
		return &NameError{Path: p, Reason: "contains a newline"}
	}
	return nil
}

// NameError is a path that the spec cannot encode.
type NameError struct {
	Path   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("the name %q %s; digest spec v1 only encodes valid UTF-8 names without newlines: rename it or exclude it", e.Path, e.Reason)
}

// Sort orders the entries canonically: by the bytes of their path.
func (m *Listing) Sort() {
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
}

// Encode returns the canonical listing. The entries must be sorted and valid
// (Validate); Encode does not check.
func (m *Listing) Encode() []byte {
	var b bytes.Buffer
	b.Grow(len(TreeHeader) + len(m.Entries)*(len(KindSymlink)+2*sha256.Size+40))
	b.WriteString(TreeHeader)
	for _, e := range m.Entries {
		b.WriteString(string(e.Kind))
		b.WriteByte(' ')
		b.WriteString(e.SHA256.Hex())
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(e.Size, 10))
		b.WriteByte(' ')
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// EncodedSize is len(m.Encode()), computed without encoding.
func (m *Listing) EncodedSize() int64 {
	n := int64(len(TreeHeader))
	for _, e := range m.Entries {
		n += int64(len(e.Kind)) + 1 + 2*sha256.Size + 1 + int64(len(strconv.FormatInt(e.Size, 10))) + 1 + int64(len(e.Path)) + 1
	}
	return n
}

// Digest returns the tree digest: the sha256 of the listing.
func (m *Listing) Digest() Sum { return sha256.Sum256(m.Encode()) }

// Size is the sum of the entries' sizes.
func (m *Listing) Size() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}

// Validate checks that the entries are in canonical order, unique, and that
// each can be encoded.
func (m *Listing) Validate() error {
	for i, e := range m.Entries {
		if err := CheckName(e.Path); err != nil {
			return err
		}
		if e.Path == "" || strings.HasPrefix(e.Path, "/") || strings.HasSuffix(e.Path, "/") {
			return fmt.Errorf("entry %d: %q is not a relative file path", i, e.Path)
		}
		for _, part := range strings.Split(e.Path, "/") {
			if part == "" || part == "." || part == ".." {
				return fmt.Errorf("entry %d: %q is not a clean relative path", i, e.Path)
			}
		}
		if !e.Kind.valid() {
			return fmt.Errorf("entry %d: unknown kind %q", i, e.Kind)
		}
		if e.Size < 0 {
			return fmt.Errorf("entry %d: negative size", i)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return fmt.Errorf("entry %d: %q is not after %q in byte order", i, e.Path, m.Entries[i-1].Path)
		}
	}
	return nil
}

// ParseListing reads a listing. It accepts only the exact canonical
// encoding, so that ParseListing(b).Encode() == b for every accepted b.
func ParseListing(b []byte) (*Listing, error) {
	rest, ok := bytes.CutPrefix(b, []byte(TreeHeader))
	if !ok {
		return nil, fmt.Errorf("not a tree listing: it does not start with %q", strings.TrimSpace(TreeHeader))
	}
	m := &Listing{}
	for len(rest) > 0 {
		line, tail, found := bytes.Cut(rest, []byte{'\n'})
		if !found {
			return nil, fmt.Errorf("tree listing: last line has no newline")
		}
		rest = tail
		fields := strings.SplitN(string(line), " ", 4)
		if len(fields) != 4 {
			return nil, fmt.Errorf("tree listing: malformed line %q", line)
		}
		sum, err := ParseHex(fields[1])
		if err != nil {
			return nil, fmt.Errorf("tree listing: line %q: %v", line, err)
		}
		size, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || strconv.FormatInt(size, 10) != fields[2] {
			return nil, fmt.Errorf("tree listing: line %q: bad size", line)
		}
		m.Entries = append(m.Entries, Entry{Kind: Kind(fields[0]), SHA256: sum, Size: size, Path: fields[3]})
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("tree listing: %v", err)
	}
	return m, nil
}

// Diff lists the paths that differ between two listings, each prefixed by
// "+ " (added), "- " (removed) or "~ " (content or kind changed), in path
// order. At most limit paths are listed; the count of all is returned.
func Diff(old, newer *Listing, limit int) (lines []string, total int) {
	i, j := 0, 0
	add := func(s string) {
		total++
		if len(lines) < limit {
			lines = append(lines, s)
		}
	}
	for i < len(old.Entries) || j < len(newer.Entries) {
		switch {
		case j == len(newer.Entries) || (i < len(old.Entries) && old.Entries[i].Path < newer.Entries[j].Path):
			add("- " + old.Entries[i].Path)
			i++
		case i == len(old.Entries) || newer.Entries[j].Path < old.Entries[i].Path:
			add("+ " + newer.Entries[j].Path)
			j++
		default:
			if old.Entries[i].SHA256 != newer.Entries[j].SHA256 || old.Entries[i].Kind != newer.Entries[j].Kind {
				add("~ " + newer.Entries[j].Path)
			}
			i++
			j++
		}
	}
	return lines, total
}
