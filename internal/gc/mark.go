package gc

// Marking: every key reachable from the kept roots, the young objects and
// the live leases.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// references reads what key k references (store keys, existing or not):
// a listing's blobs, a release record's artifacts and image records, an
// image record's manifest, config and layer trees, a build record's output
// and log, an archive reference's blob. Results are kept: objects are
// written once.
func (c *collector) references(ctx context.Context, k string) ([]string, error) {
	key, ok := store.ParseKey(k)
	if ok && key.Family == store.FamilyBlob || key.Family == store.FamilyUnknown {
		return nil, nil // references nothing: nothing to read or remember
	}
	c.refsMu.Lock()
	r, known := c.refs[k]
	c.refsMu.Unlock()
	if known {
		return r, nil
	}
	if isStraySignature(k) {
		return nil, nil // junk beside a record's signatures: it references nothing
	}
	if !ok && key.Family != store.FamilyUnknown {
		// In a family's folder, but not one of its keys: what it
		// references cannot be known.
		return nil, fmt.Errorf("it is not a key of the store's layout (%s)", key.Family)
	}
	var refs []string
	switch key.Family {
	case store.FamilyListing:
		m, err := c.st.GetListing(ctx, key.Digest)
		if err != nil {
			return nil, err
		}
		listing := make([]string, len(m.Entries))
		for i, e := range m.Entries {
			listing[i] = c.listed(store.BlobKey(e.SHA256))
		}
		refs = listing
	case store.FamilyArchive:
		a, err := c.st.GetArchiveRef(ctx, key.Format, key.Digest)
		if err != nil {
			return nil, err
		}
		refs = []string{store.BlobKey(a), store.ListingKey(key.Digest)} // the archive, and the listing it is checked by
	case store.FamilyAction:
		r, err := c.action(ctx, k, key.Digest)
		if err != nil {
			return nil, err
		}
		refs = append(outputKeys(r), store.BlobKey(r.Log))
	case store.FamilyVersion:
		rec, err := release.Get(ctx, c.b, key.Release, key.Version)
		if err != nil {
			return nil, err
		}
		for _, a := range rec.Artifacts {
			refs = append(refs, store.HeldKeys(a)...)
		}
		for _, ref := range rec.Images {
			sum, err := release.ImageDigest(ref)
			if err != nil { // Get verified the record, not its images
				return nil, fmt.Errorf("its image %s: %w", ref, err)
			}
			refs = append(refs, store.ImageKey(sum))
		}
	case store.FamilyImage:
		rec, err := image.GetRecord(ctx, c.st, key.Digest)
		if err != nil {
			return nil, err
		}
		refs = rec.References()
	default:
		return nil, nil // references nothing
	}
	c.refsMu.Lock()
	c.refs[k] = refs
	c.refsMu.Unlock()
	return refs, nil
}

// listed is k, as the listing of the store spelled it when it holds k
// (one string per key, however many listings name it), else k itself.
func (c *collector) listed(k string) string {
	if i, ok := c.all[k]; ok {
		return i.key
	}
	return k
}

func outputKeys(r *actioncache.Record) []string {
	if r.Type == actioncache.TypeTree {
		return []string{store.ListingKey(r.Output)}
	}
	return []string{store.BlobKey(r.Output)}
}

// action reads the build record at k, of the step key, strictly.
func (c *collector) action(ctx context.Context, k string, key digest.Sum) (*actioncache.Record, error) {
	rc, err := c.b.Open(ctx, k)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, 4097))
	_ = rc.Close() // read-only
	if err != nil {
		return nil, err
	}
	return actioncache.ParseRecord(data, key, k)
}

// closure adds to kept every existing key reachable from roots, reading
// each kept object's references once, a level of references at a time,
// Concurrency() reads at once (through the backend's request slots).
func (c *collector) closure(ctx context.Context, kept map[string]bool, roots []string, onlyExisting bool) error {
	level := roots
	for len(level) > 0 {
		var todo []string
		for _, k := range level {
			if kept[k] || (onlyExisting && !c.exists(k)) {
				continue
			}
			kept[k] = true
			todo = append(todo, k)
		}
		refs := make([][]string, len(todo))
		bad := make([]error, len(todo)) // each one named, not only the first
		err := store.ForEach(ctx, c.st.Concurrency(), len(todo), func(ctx context.Context, i int) error {
			r, err := c.references(ctx, todo[i])
			if errors.Is(err, store.ErrNotFound) {
				// A lease names it and it is not there, or it was deleted since
				// it was listed (by another collector: it was garbage).
				return nil
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if isBackend(err) {
					return err // the others are not read
				}
				bad[i] = &UntrustedError{Key: todo[i], Err: err}
				return nil
			}
			refs[i] = r
			return nil
		})
		if err != nil {
			return err
		}
		if err := untrusted(bad); err != nil {
			return err
		}
		level = nil
		for _, r := range refs {
			level = append(level, r...)
		}
	}
	return nil
}

// mark returns every key kept: the closure of the roots. A version
// outside the policy whose record a live lease names is kept too (a
// writer is releasing it again, or moving a channel to it).
func (c *collector) mark(ctx context.Context, vs []*version) (map[string]bool, error) {
	var roots []string
	for _, v := range vs {
		if v.keep {
			roots = append(roots, release.VersionKey(v.name, v.version))
		}
	}
	young := c.now.Add(-c.p.Grace)
	for k, i := range c.all {
		if isContent(k) && i.modTime().After(young) {
			roots = append(roots, k)
		}
	}
	leased, err := c.leasedKeys(ctx)
	if err != nil {
		return nil, err
	}
	roots = append(roots, leased...)
	kept := map[string]bool{}
	if err := c.closure(ctx, kept, roots, true); err != nil {
		return nil, err
	}
	// A build record whose output is kept is kept (a cache hit for it),
	// with its log; an archive reference whose listing is kept, with its
	// archive. Neither keeps anything else, so one more pass is enough.
	var more, actions []string
	for k := range c.all {
		key, ok := store.ParseKey(k)
		switch {
		case kept[k] || !ok:
		case key.Family == store.FamilyAction:
			actions = append(actions, k)
		case key.Family == store.FamilyArchive:
			if kept[store.ListingKey(key.Digest)] {
				more = append(more, k)
			}
		}
	}
	// The build records, read Concurrency() at once.
	hit := make([]bool, len(actions))
	err = store.ForEach(ctx, c.st.Concurrency(), len(actions), func(ctx context.Context, i int) error {
		key, _ := store.ParseKey(actions[i])
		r, err := c.action(ctx, actions[i], key.Digest)
		if isBackend(err) {
			return err // not read is not damaged: what it holds is unknown
		}
		if err == nil { // a damaged record is garbage: nothing needs it
			hit[i] = kept[outputKeys(r)[0]] // kept is only read here
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	for i, k := range actions {
		if hit[i] {
			more = append(more, k)
		}
	}
	if err := c.closure(ctx, kept, more, true); err != nil {
		return nil, err
	}
	if err := c.markSignatures(ctx, kept); err != nil {
		return nil, err
	}
	for _, v := range vs {
		if !v.keep && kept[release.VersionKey(v.name, v.version)] {
			v.keep, v.why = true, "outside the policy, but a writer's lease holds it"
		}
		if v.keep {
			c.report.Kept = append(c.report.Kept, v.String())
			c.logf("keep %s: %s", v, v.why)
		} else {
			c.logf("delete %s: outside the policy", v)
		}
	}
	for k, i := range c.all {
		if kept[k] && isContent(k) {
			c.report.Retained.Objects++
			c.report.Retained.Bytes += i.size
		}
	}
	return kept, nil
}

// leasedKeys reads every lease not read yet, Concurrency() at once, and
// returns the keys the live ones name. A lease lives for the grace period
// (at least store.LeaseTTL, which writers count on): a key a writer relied
// on is as young as its last use, so content found already stored by a
// new artifact is kept like content stored just now.
//
// Expired leases are read too: only what parses as a lease is ever
// deleted as one (sweep), and anything else under gc/leases/ (a README put
// there) stops the collection with an *UntrustedError naming it, before
// anything is deleted when it is there from the start.
func (c *collector) leasedKeys(ctx context.Context) ([]string, error) {
	c.leasesMu.Lock()
	defer c.leasesMu.Unlock()
	infos, err := c.d.ListInfo(ctx, store.LeasesPrefix)
	if err != nil {
		return nil, err
	}
	var todo []string
	for _, i := range infos {
		if _, ok := c.leases[i.Key]; !ok { // written once: read once
			todo = append(todo, i.Key)
		}
	}
	read, err := c.readProtocol(ctx, todo, false)
	if err != nil {
		return nil, err
	}
	maps.Copy(c.leases, read)
	var keys []string
	for _, i := range infos {
		if ks, ok := c.leases[i.Key]; ok && !c.leaseExpired(i) {
			keys = append(keys, ks...)
		}
	}
	return keys, nil
}

// readProtocol reads leases (marker false) or markers, Concurrency() at
// once, and returns the keys each names; one gone since it was listed is
// left out. One that is not what the provider writes (by its name or its
// content) is an *UntrustedError naming it.
func (c *collector) readProtocol(ctx context.Context, keys []string, marker bool) (map[string][]string, error) {
	family, what := store.FamilyLease, "a lease"
	if marker {
		family, what = store.FamilyMarker, "a collector's marker"
	}
	named := make([][]string, len(keys))
	gone := make([]bool, len(keys))
	bad := make([]error, len(keys)) // each one named, not only the first
	err := store.ForEach(ctx, c.st.Concurrency(), len(keys), func(ctx context.Context, i int) error {
		k := keys[i]
		if key, ok := store.ParseKey(k); !ok || key.Family != family {
			bad[i] = &UntrustedError{Key: k, Err: fmt.Errorf("it is not %s the provider wrote: those are named "+
				"%s<20 digits>-<16 hex digits>, and the collector deletes nothing else there", what, family.Prefix())}
			return nil
		}
		ks, err := store.ReadKeys(ctx, c.b, k, marker)
		if errors.Is(err, store.ErrNotFound) {
			gone[i] = true
			return nil
		}
		if err != nil && ctx.Err() == nil {
			if isBackend(err) {
				return err // the others are not read
			}
			bad[i] = &UntrustedError{Key: k, Err: err}
			return nil
		}
		named[i] = ks
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := untrusted(bad); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i, k := range keys {
		if !gone[i] {
			out[k] = named[i]
		}
	}
	return out, nil
}

// leaseExpired: older than the grace period on the store's clock now AND
// at the time the policy is applied. The second keeps every lease written
// during this run alive until it ends, however long it runs; do not drop
// either clause.
func (c *collector) leaseExpired(i store.ObjectInfo) bool {
	return c.storeNow().Sub(i.ModTime) > c.p.Grace && c.now.Sub(i.ModTime) > c.p.Grace
}
