package gc

// The report of a collection, and the -v log of each step.

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Kinds of objects, in the order they are deleted.
const (
	KindSignature = "signatures"
	KindRelease   = "release records"
	KindImage     = "image records"
	KindAction    = "build records"
	KindArchive   = "archive references"
	KindListing   = "listings"
	KindBlob      = "blobs"
	KindLease     = "expired leases"
	KindMarker    = "stale markers"
)

// Kinds lists the kinds in deletion order.
// Signatures go first: a signature never outlives the record it signs.
var Kinds = []string{KindSignature, KindRelease, KindImage, KindAction, KindArchive, KindListing, KindBlob, KindLease, KindMarker}

// contentKinds are the kinds of content, in deletion order: records before
// what they name, listings before their blobs. Signatures go before the
// release records, apart.
var contentKinds = Kinds[2:7]

// Count is a number of objects and their bytes.
type Count struct {
	Objects int
	Bytes   int64
}

// Report is what a collection deleted, or would delete in a dry run.
type Report struct {
	DryRun   bool
	Versions []string         // name@version deleted (or that would be)
	Kept     []string         // name@version kept
	Deleted  map[string]Count // by kind
	Retained Count            // content objects kept (blobs, listings, build and image records, references)
	// Empty is a store with no release and no content at all.
	Empty bool
	// Tombstones written: one per version deleted.
	Tombstones int
	// Leased are keys that were to be deleted but a lease named (or
	// reached) just before: a writer is using them, so they stay.
	Leased []string
	// Markers of other collections, not expired when the store was
	// listed: waited for and removed once expired (reported only, in a
	// dry run).
	Markers []Marker
	// Adopted: the store had no identity, every key there was the store's,
	// and the identity was written (would be, in a dry run).
	Adopted bool
}

// Total is every object and byte deleted.
func (r *Report) Total() Count {
	var c Count
	for _, k := range Kinds {
		c.Objects += r.Deleted[k].Objects
		c.Bytes += r.Deleted[k].Bytes
	}
	return c
}

// String is the report as the `gc` command prints it.
func (r *Report) String() string {
	var b strings.Builder
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(&b, "%s %s", verb, count(len(r.Versions), "release versions"))
	if len(r.Versions) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(r.Versions, ", "))
	}
	fmt.Fprintf(&b, "\nkept %s\n", count(len(r.Kept), "release versions"))
	t := r.Total()
	fmt.Fprintf(&b, "%s %s, %s", verb, count(t.Objects, "objects"), Bytes(t.Bytes))
	var parts []string
	for _, k := range Kinds {
		if c := r.Deleted[k]; c.Objects > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s)", count(c.Objects, k), Bytes(c.Bytes)))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\nkept %s, %s\n", count(r.Retained.Objects, "objects"), Bytes(r.Retained.Bytes))
	if r.Tombstones > 0 {
		fmt.Fprintf(&b, "wrote %s (%s): those versions are never published again\n", count(r.Tombstones, "tombstones"), store.FamilyCollected)
	}
	if len(r.Leased) > 0 {
		fmt.Fprintf(&b, "kept %s a writer leased during the collection\n", count(len(r.Leased), "objects"))
	}
	for _, m := range r.Markers {
		at := m.Expires.UTC().Format("2006-01-02 15:04:05 MST")
		switch {
		case r.DryRun:
			fmt.Fprintf(&b, "found %s, the marker of another collection (still running, or interrupted): writers wait for it "+
				"until %s; a collection that is not a dry run waits for it, then removes it\n", m.Key, at)
		case m.Removed:
			fmt.Fprintf(&b, "removed %s, the marker of an interrupted collection, once it expired at %s (waited %s): "+
				"writers no longer wait for it, and of what it named, this run deleted what its own policy finds garbage\n", m.Key, at, m.Waited.Round(time.Second))
		default:
			fmt.Fprintf(&b, "waited %s for %s, the marker of another collection, until that collection removed it\n",
				m.Waited.Round(time.Second), m.Key)
		}
	}
	if r.Adopted {
		w := "wrote"
		if r.DryRun {
			w = "would write"
		}
		fmt.Fprintf(&b, "%s %s: every key there is the store's, so it is adopted as one\n", w, store.IdentityKey)
	}
	return b.String()
}

// count is n things, plural a plural ending in s: "1 blob", "2 blobs".
func count(n int, plural string) string {
	if n == 1 {
		return "1 " + strings.TrimSuffix(plural, "s")
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// Bytes formats a size for people.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (c *collector) count(kind string, keys ...string) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.report.Deleted[kind]
	for _, k := range keys {
		if i, ok := c.all[k]; ok {
			n.Objects++
			n.Bytes += i.size
		}
	}
	c.report.Deleted[kind] = n
}

// snapshot is what the report counted at a point of the run.
type snapshot struct {
	deleted    map[string]Count
	tombstones int
	leased     int
}

func (c *collector) snapshot() snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return snapshot{deleted: maps.Clone(c.report.Deleted), tombstones: c.report.Tombstones, leased: len(c.report.Leased)}
}

// logDeleted logs what was deleted (would be, in a dry run) since before:
// the objects and bytes of each kind, the tombstones written and the keys
// a lease kept.
func (c *collector) logDeleted(before snapshot) {
	now := c.snapshot()
	var deleted, parts []string
	for _, k := range Kinds {
		if d := now.deleted[k]; d.Objects > before.deleted[k].Objects {
			deleted = append(deleted, fmt.Sprintf("%s (%s)", count(d.Objects-before.deleted[k].Objects, k), Bytes(d.Bytes-before.deleted[k].Bytes)))
		}
	}
	if len(deleted) > 0 {
		verb := "deleted "
		if c.o.DryRun {
			verb = "would delete "
		}
		parts = append(parts, verb+strings.Join(deleted, ", "))
	}
	if n := now.tombstones - before.tombstones; n > 0 {
		parts = append(parts, "wrote "+count(n, "tombstones"))
	}
	if n := now.leased - before.leased; n > 0 {
		parts = append(parts, "kept "+count(n, "objects")+" a writer leased")
	}
	if len(parts) > 0 {
		c.logf("%s", strings.Join(parts, "; "))
	}
}
