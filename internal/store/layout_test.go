package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// TestLayoutRoundTrip: every family's builder makes the key its pattern
// says, and ParseKey reads it back into the same family and parts.
func TestLayoutRoundTrip(t *testing.T) {
	sum := digest.Bytes([]byte("content\n"))
	h := sum.Hex()
	const id = "00000001764982800000-0123456789abcdef"
	kid := digest.Bytes([]byte("a public key")).Hex()
	for _, c := range []struct {
		built string
		want  string
		key   store.Key
	}{
		{store.BlobKey(sum), "blobs/sha256/" + h[:2] + "/" + h, store.Key{Family: store.FamilyBlob, Digest: sum}},
		{store.ListingKey(sum), "trees/sha256/" + h[:2] + "/" + h, store.Key{Family: store.FamilyListing, Digest: sum}},
		{store.ArchiveKey("tar.gz-v1", sum), "archives/tar.gz-v1/" + h[:2] + "/" + h, store.Key{Family: store.FamilyArchive, Format: "tar.gz-v1", Digest: sum}},
		{store.ActionKey(sum), "actions/sha256/" + h[:2] + "/" + h, store.Key{Family: store.FamilyAction, Digest: sum}},
		{store.ImageKey(sum), "images/sha256/" + h[:2] + "/" + h, store.Key{Family: store.FamilyImage, Digest: sum}},
		{store.VersionKey("web", "1.2.0-rc.1"), "releases/web/versions/1.2.0-rc.1", store.Key{Family: store.FamilyVersion, Release: "web", Version: "1.2.0-rc.1"}},
		{store.IndexKey("web", sum, "1.2.0"), "releases/web/digests/" + h + "/1.2.0", store.Key{Family: store.FamilyIndex, Release: "web", Digest: sum, Version: "1.2.0"}},
		{store.YankKey("web", "1.2.0", 3), "releases/web/yanks/1.2.0/0000000003", store.Key{Family: store.FamilyYank, Release: "web", Version: "1.2.0", Seq: 3}},
		{store.CollectedKey("web", "1.0.0"), "releases/web/collected/1.0.0", store.Key{Family: store.FamilyCollected, Release: "web", Version: "1.0.0"}},
		{store.MoveKey("web", "prod", 9999999999), "channels/web/prod/moves/9999999999", store.Key{Family: store.FamilyMove, Release: "web", Channel: "prod", Seq: 9999999999}},
		{store.SignatureKey(sum, kid), "signatures/sha256/" + h[:2] + "/" + h + "/" + kid, store.Key{Family: store.FamilySignature, Digest: sum, KeyID: kid}},
		{store.LeaseKey(id), "gc/leases/" + id, store.Key{Family: store.FamilyLease, ID: id}},
		{store.MarkerKey(id), "gc/condemned/" + id, store.Key{Family: store.FamilyMarker, ID: id}},
		{store.IdentityKey, "gc/store.json", store.Key{Family: store.FamilyIdentity}},
	} {
		if c.built != c.want {
			t.Errorf("%s builds %q, want %q", c.key.Family, c.built, c.want)
		}
		got, ok := store.ParseKey(c.want)
		if !ok || got != c.key {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", c.want, fields(got), ok, fields(c.key))
		}
		if s := c.key.String(); s != c.want {
			t.Errorf("%+v.String() = %q, want %q", fields(c.key), s, c.want)
		}
		if !strings.HasPrefix(c.want, c.key.Family.Prefix()) || !strings.HasPrefix(c.want, c.key.Family.Dir()) {
			t.Errorf("%q is not under %s's prefix %q or folder %q", c.want, c.key.Family, c.key.Family.Prefix(), c.key.Family.Dir())
		}
	}
	// Every family is in the table, and every family's folder is one of the layout's.
	if n := len(store.Families()); n != 14 {
		t.Errorf("%d families; the table covers 14", n)
	}
	if got := store.NewObjectID(time.Unix(0, 0)); !isFamily(store.LeaseKey(got), store.FamilyLease) {
		t.Errorf("a lease named by NewObjectID (%s) does not parse", got)
	}
	// The prefixes writers list match the keys they build.
	for _, c := range []struct {
		prefix, key, rest string
	}{
		{store.VersionsPrefix("web"), store.VersionKey("web", "1.0.0"), "1.0.0"},
		{store.IndexPrefix("web", sum), store.IndexKey("web", sum, "1.0.0"), "1.0.0"},
		{store.YanksPrefix("web"), store.YankKey("web", "1.0.0", 1), "1.0.0/0000000001"},
		{store.YankPrefix("web", "1.0.0"), store.YankKey("web", "1.0.0", 1), "0000000001"},
		{store.MovesPrefix("web", "prod"), store.MoveKey("web", "prod", 1), "0000000001"},
		{store.SignaturesPrefix(sum), store.SignatureKey(sum, kid), kid},
		{store.LeasesPrefix, store.LeaseKey(id), id},
		{store.MarkersPrefix, store.MarkerKey(id), id},
	} {
		if c.key != c.prefix+c.rest {
			t.Errorf("%q is not %q in the folder %q", c.key, c.rest, c.prefix)
		}
	}
	if got := store.HeldKeys(sum.String(), "not a digest"); !slices.Equal(got, []string{store.ListingKey(sum), store.BlobKey(sum)}) {
		t.Errorf("HeldKeys = %v", got)
	}
}

// fields is a Key without its String method, for messages.
type fields store.Key

func isFamily(key string, f store.Family) bool {
	k, ok := store.ParseKey(key)
	return ok && k.Family == f
}

// TestLayoutRefusesMalformed: a key that is not exactly one the layout
// builds is refused; one in a family's folder still says which (and the
// names its folder holds), and nothing else.
func TestLayoutRefusesMalformed(t *testing.T) {
	h := digest.Bytes([]byte("content\n")).Hex()
	const id = "00000001764982800000-0123456789abcdef"
	for _, c := range []struct {
		key    string
		family store.Family
	}{
		{"blobs/sha256/00/" + h, store.FamilyBlob},                                                 // wrong shard
		{"blobs/sha256/" + h[:2] + "/" + h[:63] + "g", store.FamilyBlob},                           // bad hex
		{"blobs/sha256/" + h[:2] + "/" + h[:62], store.FamilyBlob},                                 // short hex
		{"trees/sha256/" + h[:2] + "/" + strings.ToUpper(h), store.FamilyListing},                  // upper-case hex
		{"trees/sha256/" + h[:2] + "/" + h + "/x", store.FamilyListing},                            // extra segment
		{"trees/sha256/" + h[:2] + "/" + h + ".bak", store.FamilyListing},                          // a suffix
		{"archives/ZIP/" + h[:2] + "/" + h, store.FamilyArchive},                                   // format
		{"archives/zip-v1/index", store.FamilyArchive},                                             // missing segment
		{"actions/sha256/" + h[:2] + "/" + h[:2], store.FamilyAction},                              // not a digest
		{"images/sha256/" + h[:2] + "/" + h[:63], store.FamilyImage},                               // short hex
		{"images/sha256/00/" + h, store.FamilyImage},                                               // wrong shard
		{"images/sha256/" + h[:2] + "/" + h + ".json", store.FamilyImage},                          // a suffix
		{"releases/Web/versions/1.0.0", store.FamilyVersion},                                       // name
		{"releases/web/versions/v1.0.0", store.FamilyVersion},                                      // version
		{"releases/web/versions/1.0.0+build", store.FamilyVersion},                                 // version
		{"releases/web/versions/01.0.0", store.FamilyVersion},                                      // not canonical
		{"releases/web/versions/1.0.0-rc..1", store.FamilyVersion},                                 // not canonical
		{"releases/web/versions/1.0.0/x", store.FamilyVersion},                                     // extra segment
		{"releases/web/digests/" + h[:2] + "/" + h + "/1.0.0", store.FamilyIndex},                  // sharded
		{"releases/web/yanks/1.0.0/1", store.FamilyYank},                                           // seq not ten digits
		{"releases/web/yanks/1.0.0/10000000000", store.FamilyYank},                                 // eleven digits
		{"releases/web/yanks/1.0.0", store.FamilyYank},                                             // no seq
		{"releases/web/collected/1.0", store.FamilyCollected},                                      // version
		{"channels/web/prod/moves/000000000x", store.FamilyMove},                                   // seq
		{"channels/web/-prod/moves/0000000001", store.FamilyMove},                                  // channel name
		{"signatures/sha256/" + h[:2] + "/" + h + "/" + strings.ToUpper(h), store.FamilySignature}, // upper-case key ID
		{"signatures/sha256/" + h[:2] + "/" + h + "/" + h[:40], store.FamilySignature},             // short key ID
		{"signatures/sha256/00/" + h + "/" + h, store.FamilySignature},                             // wrong shard
		{"signatures/sha256/" + h[:2] + "/" + h, store.FamilySignature},                            // no key ID
		{"signatures/sha256/" + h[:2] + "/" + h + "/" + h + ".json", store.FamilySignature},        // a suffix
		{"gc/leases/README", store.FamilyLease},                                                    // not an id
		{"gc/leases/old/" + id, store.FamilyLease},                                                 // a folder
		{"gc/condemned/" + strings.ToUpper(id), store.FamilyMarker},                                // id
		{"notes.txt", store.FamilyUnknown},
		{"blobs/README", store.FamilyUnknown},
		{"blobs/sha256", store.FamilyUnknown},
		{"images/sha512/00/" + h, store.FamilyUnknown},
		{"blobs/sha256/", store.FamilyUnknown},
		{"releases/web", store.FamilyUnknown},
		{"releases//versions/1.0.0", store.FamilyUnknown},
		{"releases/web/notes/1.0.0", store.FamilyUnknown},
		{"channels/web/prod/history/0000000001", store.FamilyUnknown},
		{"gc/store.json.bak", store.FamilyUnknown},
		{"gc/other", store.FamilyUnknown},
		{"", store.FamilyUnknown},
	} {
		k, ok := store.ParseKey(c.key)
		if ok || k.Family != c.family {
			t.Errorf("ParseKey(%q) = %+v, %v; want not ok, family %s", c.key, fields(k), ok, c.family)
		}
		if k.Digest != (digest.Sum{}) || k.Version != "" || k.Seq != 0 || k.ID != "" || k.Format != "" || k.KeyID != "" {
			t.Errorf("ParseKey(%q) = %+v: a refused key's parts are set", c.key, fields(k))
		}
	}
	// The names in a refused key's folder are still read: what it was meant to be.
	if k, _ := store.ParseKey("channels/web/prod/moves/junk"); k.Release != "web" || k.Channel != "prod" {
		t.Errorf("a malformed move of web/prod reads as %+v", fields(k))
	}
	if k, _ := store.ParseKey("releases/Web/versions/1.0.0"); k.Release != "Web" {
		t.Errorf("a record under a malformed name reads as %+v", fields(k))
	}
}

func TestShards(t *testing.T) {
	for _, f := range store.Families() {
		shards := f.Shards()
		switch f {
		case store.FamilyBlob, store.FamilyListing, store.FamilyAction, store.FamilyImage, store.FamilySignature:
			if len(shards) != 256 || shards[0] != f.Prefix()+"00/" || shards[255] != f.Prefix()+"ff/" {
				t.Errorf("%s: shards %.3v… (%d), want %s00/ to %sff/", f, shards, len(shards), f.Prefix(), f.Prefix())
			}
			for _, s := range shards {
				k := s + strings.Repeat(s[len(s)-3:len(s)-1], 32)
				if f == store.FamilySignature {
					k += "/" + strings.Repeat("0", 64)
				}
				if key, ok := store.ParseKey(k); !ok || key.Family != f {
					t.Fatalf("%s: %s is not a key of the family", s, k)
				}
			}
		default:
			if shards != nil {
				t.Errorf("%s: shards %v, want none", f, shards)
			}
		}
	}
}

// TestMaxKeyLength: the longest key the layout can hold, an index entry
// with a name and a version of the longest allowed, is MaxKeyLength
// bytes, and no family's key with the longest parts is longer.
func TestMaxKeyLength(t *testing.T) {
	name := strings.Repeat("n", store.MaxNameLength)
	version := "1.0.0-" + strings.Repeat("a", versions.MaxLength-len("1.0.0-"))
	if _, err := versions.Parse(version); err != nil {
		t.Fatal(err)
	}
	sum := digest.Bytes([]byte("x"))
	index := store.IndexKey(name, sum, version)
	if _, ok := store.ParseKey(index); !ok || len(index) != store.MaxKeyLength || store.MaxKeyLength != 339 {
		t.Errorf("the longest index entry is %d bytes (a key: %v), MaxKeyLength %d; want both 339", len(index), ok, store.MaxKeyLength)
	}
	for _, k := range []string{
		store.YankKey(name, version, 9999999999), store.MoveKey(name, name, 9999999999), store.CollectedKey(name, version),
		store.VersionKey(name, version), store.ArchiveKey(strings.Repeat("z", 32), sum),
		store.SignatureKey(sum, sum.Hex()), store.LeaseKey("00000001764982800000-0123456789abcdef"),
	} {
		if _, ok := store.ParseKey(k); !ok || len(k) > store.MaxKeyLength {
			t.Errorf("%.40s…: %d bytes (a key: %v), over MaxKeyLength %d", k, len(k), ok, store.MaxKeyLength)
		}
	}
	if _, ok := store.ParseKey(store.ArchiveKey(strings.Repeat("z", 33), sum)); ok {
		t.Errorf("an archive format over 32 bytes makes a key")
	}
}
