package digest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// listingFrom turns fuzz input into a listing: one entry per line,
// "kind|path|content". It returns nil where the input is not a tree the
// walker could produce (invalid names, duplicate paths).
func listingFrom(s string) *Listing {
	m := &Listing{}
	seen := map[string]bool{}
	for _, line := range strings.Split(s, "\x00") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			continue
		}
		kind := []Kind{KindFile, KindExec, KindSymlink}[len(parts[0])%3]
		if seen[parts[1]] {
			return nil
		}
		seen[parts[1]] = true
		m.Entries = append(m.Entries, Entry{Path: parts[1], Kind: kind, SHA256: Bytes([]byte(parts[2])), Size: int64(len(parts[2]))})
	}
	m.Sort()
	if m.Validate() != nil {
		return nil
	}
	return m
}

// FuzzListingIsInjective checks that two different trees never encode to
// the same listing (so never share a digest, short of a sha256 collision),
// and that every listing parses back to its tree.
func FuzzListingIsInjective(f *testing.F) {
	f.Add("file|a|x", "file|a|y")
	f.Add("file|a b|x\x00file|a/b|x", "file|a/b|x\x00file|a b|x")
	f.Add("exec|a|x", "file|a|x")
	f.Add("file|a\nfile 00 0 b|x", "file|a|x")
	f.Add("symlink|dir/link|target", "file|dir/link|target")
	f.Fuzz(func(t *testing.T, a, b string) {
		ma, mb := listingFrom(a), listingFrom(b)
		if ma == nil || mb == nil {
			return
		}
		ea, eb := ma.Encode(), mb.Encode()
		if bytes.Equal(ea, eb) != reflect.DeepEqual(ma.Entries, mb.Entries) {
			t.Fatalf("trees %+v and %+v: equal listings %v, equal trees %v", ma.Entries, mb.Entries, bytes.Equal(ea, eb), reflect.DeepEqual(ma.Entries, mb.Entries))
		}
		back, err := ParseListing(ea)
		if err != nil {
			t.Fatalf("listing of a valid tree does not parse: %v\n%q", err, ea)
		}
		if !bytes.Equal(back.Encode(), ea) {
			t.Fatalf("parse/encode round trip changed %q", ea)
		}
	})
}
