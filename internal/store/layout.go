package store

import (
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// The store's key layout: every family of keys the store holds, how a key
// of each is built, and how any key is read back (ParseKey). Nothing else
// spells a key: the collector (package gc) and the release package ask
// here. Keys are slash-separated; <hh> is the first two digits of the
// <hex> after it, which spreads a family over 256 folders.
//
//	blobs/sha256/<hh>/<hex>                    a file's bytes, by their sha256
//	trees/sha256/<hh>/<hex>                    a tree listing (digest spec v1), by its sha256
//	archives/<format>/<hh>/<hex>               "sha256:<archive hex>\n": the archive of the
//	                                           listing <hex> in <format> ("zip-v1"); the
//	                                           archive's bytes are a blob
//	actions/sha256/<hh>/<hex>                  a build step's action record, by its key
//	                                           (package actioncache): its output and log digests
//	images/sha256/<hh>/<hex>                   an image's record (package image), by its manifest's
//	                                           sha256: its manifest and config (blobs) and the
//	                                           trees its own layers were made of; written once
//	releases/<name>/versions/<version>         a release record (package release), written once
//	releases/<name>/digests/<hex>/<version>    an index entry: the versions of a content
//	releases/<name>/yanks/<version>/<seq>      a yank entry; seq 0000000001, 0000000002, …
//	releases/<name>/collected/<version>        the tombstone of a version retention deleted
//	channels/<release>/<channel>/moves/<seq>   a channel move; seq as a yank's
//	signatures/sha256/<hh>/<hex>/<keyid>       a signature (package signature: a DSSE envelope,
//	                                           JSON) of the record whose stored bytes have the
//	                                           sha256 <hex>, by the key <keyid>; written once,
//	                                           one per key (package release, SignRecord)
//	gc/leases/<id>                             keys a writer relies on (lease.go, Hold)
//	gc/condemned/<id>                          keys a collector is deleting (package gc)
//	gc/store.json                              the store's identity (identity.go)
//
// Names (<name>, <release>, <channel>) and versions have the shape package
// release gives them (release.CheckName, release.CheckChannel,
// versions.Parse check them fully, with messages), at most MaxNameLength
// and versions.MaxLength bytes; <format> is lower-case letters, digits,
// '.' and '-', at most maxFormatLength; <id> is NewObjectID's; <keyid> is
// a key's ID: the lower-case hex sha256 of its PKIX public key. So every
// key is at most MaxKeyLength bytes long (ASCII): what a backend whose
// names are bounded (Cloud Storage: 1024 bytes) checks a prefix against.

// Family is one kind of key in the layout.
type Family int

// The families, each with its key's pattern.
const (
	FamilyUnknown   Family = iota // not a key of the layout
	FamilyBlob                    // blobs/sha256/<hh>/<hex>
	FamilyListing                 // trees/sha256/<hh>/<hex>: a tree's listing (the folder keeps its first name)
	FamilyArchive                 // archives/<format>/<hh>/<hex>
	FamilyAction                  // actions/sha256/<hh>/<hex>
	FamilyImage                   // images/sha256/<hh>/<hex>
	FamilyVersion                 // releases/<name>/versions/<version>
	FamilyIndex                   // releases/<name>/digests/<hex>/<version>
	FamilyYank                    // releases/<name>/yanks/<version>/<seq>
	FamilyCollected               // releases/<name>/collected/<version>
	FamilyMove                    // channels/<release>/<channel>/moves/<seq>
	FamilySignature               // signatures/sha256/<hh>/<hex>/<keyid>
	FamilyLease                   // gc/leases/<id>
	FamilyMarker                  // gc/condemned/<id>
	FamilyIdentity                // gc/store.json
)

// MaxNameLength bounds a release's and a channel's name (<name>,
// <release>, <channel>): package release checks it.
const MaxNameLength = 128

// maxFormatLength bounds an archive's format (<format>, "tar.gz-v1").
const maxFormatLength = 32

// partLength is the most bytes each part of a pattern can take.
var partLength = map[string]int{
	"<hh>": 2, "<hex>": 64, "<format>": maxFormatLength, "<name>": MaxNameLength, "<release>": MaxNameLength,
	"<channel>": MaxNameLength, "<version>": versions.MaxLength, "<seq>": 10, "<id>": len("00000000000000000000-0123456789abcdef"),
	"<keyid>": 64,
}

// MaxKeyLength is the most bytes a key of the layout takes: an index
// entry's (releases/<name>/digests/<hex>/<version>), with a name and a
// version of the longest allowed.
var MaxKeyLength = func() int {
	longest := 0
	for _, p := range patterns {
		n := 0
		for i, seg := range strings.Split(p, "/") {
			if i > 0 {
				n++
			}
			if l, ok := partLength[seg]; ok {
				n += l
			} else {
				n += len(seg)
			}
		}
		longest = max(longest, n)
	}
	return longest
}()

// patterns spell every family's keys, and nothing else does.
var patterns = [...]string{
	FamilyUnknown:   "",
	FamilyBlob:      "blobs/sha256/<hh>/<hex>",
	FamilyListing:   "trees/sha256/<hh>/<hex>",
	FamilyArchive:   "archives/<format>/<hh>/<hex>",
	FamilyAction:    "actions/sha256/<hh>/<hex>",
	FamilyImage:     "images/sha256/<hh>/<hex>",
	FamilyVersion:   "releases/<name>/versions/<version>",
	FamilyIndex:     "releases/<name>/digests/<hex>/<version>",
	FamilyYank:      "releases/<name>/yanks/<version>/<seq>",
	FamilyCollected: "releases/<name>/collected/<version>",
	FamilyMove:      "channels/<release>/<channel>/moves/<seq>",
	FamilySignature: "signatures/sha256/<hh>/<hex>/<keyid>",
	FamilyLease:     LeasesPrefix + "<id>",
	FamilyMarker:    MarkersPrefix + "<id>",
	FamilyIdentity:  IdentityKey,
}

// families lists the families of the layout, FamilyUnknown left out.
var families = func() []Family {
	fs := make([]Family, 0, len(patterns)-1)
	for f := FamilyBlob; int(f) < len(patterns); f++ {
		fs = append(fs, f)
	}
	return fs
}()

// segments are the patterns split at their slashes, once; folders how
// many of each make its folder: up to its last fixed segment.
var segments, folders = func() ([][]string, []int) {
	s, n := make([][]string, len(patterns)), make([]int, len(patterns))
	for f, p := range patterns {
		if p == "" {
			continue
		}
		s[f] = strings.Split(p, "/")
		for i, seg := range s[f] {
			if seg[0] != '<' {
				n[f] = i + 1
			}
		}
	}
	return s, n
}()

// Families lists every family of the layout.
func Families() []Family { return append([]Family(nil), families...) }

// String is the family's pattern, such as "gc/leases/<id>".
func (f Family) String() string {
	if f <= FamilyUnknown || int(f) >= len(patterns) {
		return "unknown"
	}
	return patterns[f]
}

// Dir is the top-level folder the family's keys are in, such as "blobs/":
// "releases/" holds four families, "gc/" three.
func (f Family) Dir() string {
	if f <= FamilyUnknown || int(f) >= len(patterns) {
		return ""
	}
	return segments[f][0] + "/"
}

// Prefix is what every key of the family starts with, such as
// "blobs/sha256/" or "releases/": its pattern up to the first part.
func (f Family) Prefix() string {
	if f <= FamilyUnknown || int(f) >= len(patterns) {
		return ""
	}
	p, _, _ := strings.Cut(patterns[f], "<")
	return p
}

// The fixed folders of the collector protocol (lease.go).
const (
	LeasesPrefix  = "gc/leases/"
	MarkersPrefix = "gc/condemned/"
)

// IdentityKey is where the store's identity lives (identity.go).
const IdentityKey = "gc/store.json"

// Key is a key of the layout, read into its family and parts. Which parts
// a family has is in its pattern: <hex> is Digest (a blob's, a listing's,
// an action's key, an archive's listing's, an image's manifest's, a
// release content's, a signed record's), <name> and <release> are
// Release, <keyid> is KeyID.
type Key struct {
	Family  Family
	Digest  digest.Sum
	Format  string
	Release string
	Channel string
	Version string
	Seq     int
	ID      string
	KeyID   string
}

// String builds the key k's parts make (for a k ParseKey accepted: the
// key it read).
func (k Key) String() string {
	if k.Family <= FamilyUnknown || int(k.Family) >= len(patterns) {
		return ""
	}
	b := make([]byte, 0, len(patterns[k.Family])+2*64)
	var hx [64]byte // the digest's hex, once
	for i, s := range segments[k.Family] {
		if i > 0 {
			b = append(b, '/')
		}
		if s[0] != '<' {
			b = append(b, s...)
			continue
		}
		switch s {
		case "<hh>", "<hex>":
			if hx[0] == 0 {
				hex.Encode(hx[:], k.Digest[:])
			}
			if s == "<hh>" {
				b = append(b, hx[:2]...)
			} else {
				b = append(b, hx[:]...)
			}
		case "<format>":
			b = append(b, k.Format...)
		case "<name>", "<release>":
			b = append(b, k.Release...)
		case "<channel>":
			b = append(b, k.Channel...)
		case "<version>":
			b = append(b, k.Version...)
		case "<seq>":
			b = append(b, formatSeq(k.Seq)...)
		case "<id>":
			b = append(b, k.ID...)
		case "<keyid>":
			b = append(b, k.KeyID...)
		}
	}
	return string(b)
}

// formatSeq is a history entry's number as its key spells it: ten digits.
func formatSeq(n int) string {
	s := strconv.Itoa(n)
	if len(s) < 10 {
		s = strings.Repeat("0", 10-len(s)) + s
	}
	return s
}

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	formatRe = regexp.MustCompile(`^[a-z0-9.-]{1,32}$`) // maxFormatLength
	seqRe    = regexp.MustCompile(`^[0-9]{10}$`)
	idRe     = regexp.MustCompile(`^[0-9]{20}-[0-9a-f]{16}$`)
	keyIDRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseKey reads a key into its family and parts. ok is true for exactly
// the keys the layout holds: k.String() is key again.
//
// A key that is not one, but lies in a family's folder (under
// blobs/sha256/, releases/<name>/versions/, channels/<release>/<channel>/moves/,
// gc/leases/, …: a malformed digest, sequence number, id, name or
// version, a shard that is not the digest's, a segment too many), comes
// back with ok false and still its Family, and the Release and Channel
// its folder names: what it was meant to be, for a reader to refuse it by
// name. Its other parts are not set, and nothing in it is to be trusted.
// Any other key is FamilyUnknown.
func ParseKey(key string) (k Key, ok bool) {
	got := strings.Split(key, "/")
	for _, f := range families {
		if k, ok, in := parse(f, got); in {
			return k, ok
		}
	}
	return Key{}, false
}

// parse reads got as a key of f: in reports whether it lies in f's folder
// (or is f's key, for a family of one key), ok whether it is f's key.
func parse(f Family, got []string) (k Key, ok, in bool) {
	want, folder := segments[f], folders[f]
	if folder == len(want) { // a single key (the identity)
		if len(got) != len(want) || strings.Join(got, "/") != patterns[f] {
			return Key{}, false, false
		}
		return Key{Family: f}, true, true
	}
	if len(got) <= folder || len(got) == folder+1 && got[folder] == "" {
		return Key{}, false, false // outside the folder, or the folder itself
	}
	k.Family = f
	for i, s := range want[:folder] {
		switch {
		case s[0] != '<':
			if got[i] != s {
				return Key{}, false, false
			}
		case got[i] == "":
			return Key{}, false, false
		case s == "<channel>":
			k.Channel = got[i]
		default: // <name>, <release>
			k.Release = got[i]
		}
	}
	partial := Key{Family: f, Release: k.Release, Channel: k.Channel}
	if len(got) != len(want) {
		return partial, false, true
	}
	hh, sharded := "", false
	for i, s := range want {
		g := got[i]
		valid := true
		switch s {
		case "<hh>":
			hh, sharded = g, true
		case "<hex>":
			sum, err := digest.ParseHex(g)
			valid = err == nil && (!sharded || hh == g[:2])
			k.Digest = sum
		case "<format>":
			valid = formatRe.MatchString(g)
			k.Format = g
		case "<name>", "<release>", "<channel>":
			valid = nameRe.MatchString(g)
		case "<version>":
			// The one canonical form the release package writes
			// (versions.Parse), not a looser copy of it: 01.0.0 or
			// 1.0.0-rc..1 is no version key.
			_, err := versions.Parse(g)
			valid = err == nil
			k.Version = g
		case "<seq>":
			// Atoi fails past an int's range (9999999999 on 386 and
			// arm): such a key is not one this build can name.
			n, err := strconv.Atoi(g)
			valid = seqRe.MatchString(g) && err == nil
			k.Seq = n
		case "<id>":
			valid = idRe.MatchString(g)
			k.ID = g
		case "<keyid>":
			valid = keyIDRe.MatchString(g)
			k.KeyID = g
		}
		if !valid {
			return partial, false, true
		}
	}
	return k, true, true
}

// BlobKey is where a blob's bytes live.
func BlobKey(sum digest.Sum) string { return Key{Family: FamilyBlob, Digest: sum}.String() }

// ListingKey is where a tree listing lives.
func ListingKey(sum digest.Sum) string { return Key{Family: FamilyListing, Digest: sum}.String() }

// ActionKey is where the action record of a build step's key lives.
func ActionKey(key digest.Sum) string { return Key{Family: FamilyAction, Digest: key}.String() }

// ImageKey is where the record of the image whose manifest has the
// sha256 manifest lives.
func ImageKey(manifest digest.Sum) string { return Key{Family: FamilyImage, Digest: manifest}.String() }

// ArchiveKey is where the reference to an archive of a listing lives.
func ArchiveKey(format string, listing digest.Sum) string {
	return Key{Family: FamilyArchive, Format: format, Digest: listing}.String()
}

// VersionKey is where a release version's record lives.
func VersionKey(name, version string) string {
	return Key{Family: FamilyVersion, Release: name, Version: version}.String()
}

// VersionsPrefix is the folder of a release's records.
func VersionsPrefix(name string) string { return folder(FamilyVersion, name, "") }

// IndexKey is the index entry of a release version by its content.
func IndexKey(name string, content digest.Sum, version string) string {
	return Key{Family: FamilyIndex, Release: name, Digest: content, Version: version}.String()
}

// IndexPrefix is the folder of the index entries of a release's content:
// one key per version published with it.
func IndexPrefix(name string, content digest.Sum) string {
	return folder(FamilyIndex, name, "") + content.Hex() + "/"
}

// YankKey is a release version's yank entry seq.
func YankKey(name, version string, seq int) string {
	return Key{Family: FamilyYank, Release: name, Version: version, Seq: seq}.String()
}

// YanksPrefix is the folder of a release's yank entries.
func YanksPrefix(name string) string { return folder(FamilyYank, name, "") }

// YankPrefix is the folder of one version's yank entries.
func YankPrefix(name, version string) string { return YanksPrefix(name) + version + "/" }

// CollectedKey is where the tombstone of a collected version lives.
func CollectedKey(name, version string) string {
	return Key{Family: FamilyCollected, Release: name, Version: version}.String()
}

// MoveKey is a channel's move seq.
func MoveKey(release, channel string, seq int) string {
	return Key{Family: FamilyMove, Release: release, Channel: channel, Seq: seq}.String()
}

// MovesPrefix is the folder of a channel's moves.
func MovesPrefix(release, channel string) string { return folder(FamilyMove, release, channel) }

// SignatureKey is where the signature by the key keyID of the record
// whose stored bytes have the sha256 record lives.
func SignatureKey(record digest.Sum, keyID string) string {
	return Key{Family: FamilySignature, Digest: record, KeyID: keyID}.String()
}

// SignaturesPrefix is the folder of a record's signatures: one key per
// signing key.
func SignaturesPrefix(record digest.Sum) string {
	h := record.Hex()
	return FamilySignature.Prefix() + h[:2] + "/" + h + "/"
}

// LeaseKey is where the lease id lives.
func LeaseKey(id string) string { return Key{Family: FamilyLease, ID: id}.String() }

// MarkerKey is where the marker id lives.
func MarkerKey(id string) string { return Key{Family: FamilyMarker, ID: id}.String() }

// folder is f's folder (its pattern up to its last fixed segment) for a
// release and a channel.
func folder(f Family, release, channel string) string {
	var b strings.Builder
	for _, s := range segments[f][:folders[f]] {
		switch s {
		case "<name>", "<release>":
			b.WriteString(release)
		case "<channel>":
			b.WriteString(channel)
		default:
			b.WriteString(s)
		}
		b.WriteByte('/')
	}
	return b.String()
}

// HeldKeys returns the keys an artifact digest may live under: its listing
// if it is a directory, its blob if it is a file; a lease names both. A
// string that is not "sha256:" and 64 characters has none.
func HeldKeys(sums ...string) []string {
	var keys []string
	for _, s := range sums {
		if h, ok := strings.CutPrefix(s, digest.Prefix); ok && len(h) == 64 {
			// Spelled from h as it is (not parsed), so that a digest
			// that is not one still names keys, which a reader refuses.
			keys = append(keys, shardHex(FamilyListing, h), shardHex(FamilyBlob, h))
		}
	}
	return keys
}

// shardHex is the key of f (blobs or trees) for the hex string h, as it is.
func shardHex(f Family, h string) string {
	return f.Prefix() + h[:2] + "/" + h
}
