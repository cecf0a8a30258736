// Package gc is the store's garbage collector: it applies a retention
// policy to the releases of a store and deletes every object that no kept
// root reaches, while writers keep publishing.
//
// Roots are the release versions the policy keeps, every object stored
// within the grace period, and every key a live lease names (see the
// collector protocol in package store). From the roots it keeps, closing
// over references: a listing keeps its blobs; a release version its
// artifacts (a listing or a blob); a build record its output and its log;
// an archive reference its archive's blob. A build record is kept when its
// output is kept, and an archive reference when its listing is.
//
// Everything else under blobs/, trees/, archives/ and actions/ goes, and
// so do the records of the versions outside the policy (a tombstone is
// written first, so that the version is never published again; its index
// entry and yank history stay, so that its content is found again and, if
// it was yanked, refused). Deletes go in an order that keeps the store's invariants at
// every step, so that a collector killed at any point leaves a consistent
// store: release records first, then build records, archive references,
// listings, and blobs last. Each batch is announced by a marker, the
// leases are read again, and only then is anything deleted.
//
// Channel histories, tombstones, index entries, yank histories and
// anything the collector does not recognise are never deleted. A record it cannot read or trust stops the
// collection before anything is deleted: what it references is unknown.
// So does anything under gc/leases/ or gc/condemned/ that does not parse
// as a lease or a marker: only those are deleted there, once expired.
//
// The collector touches only a store: a location holding the store's
// identity (store.IdentityKey), or, with Options.Adopt, one whose every
// key is a store's, which it then writes the identity into (identity.go).
// Anything else is refused before anything is written.
//
// The package has no dependency on Terraform.
package gc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// Policy says which release versions are kept. A version is kept when any
// rule keeps it; the highest version of each release is always kept.
type Policy struct {
	// KeepLast keeps the KeepLast highest versions of each release that
	// are not yanked.
	KeepLast int
	// KeepWithin keeps every version published within it.
	KeepWithin time.Duration
	// KeepChannelMoves keeps every version each channel pointed to in its
	// last KeepChannelMoves moves (its current version always).
	KeepChannelMoves int
	// KeepYankedFor keeps a yanked version for this long after its yank.
	KeepYankedFor time.Duration
	// Grace keeps every object stored within it, with all it references:
	// what a writer is storing right now, and what Terraform states name
	// without a release (an artifact deployed directly).
	Grace time.Duration
}

// DefaultPolicy is what `gc` uses when no option is given.
func DefaultPolicy() Policy {
	return Policy{KeepLast: 10, KeepWithin: 30 * 24 * time.Hour, KeepChannelMoves: 10, KeepYankedFor: 30 * 24 * time.Hour, Grace: 7 * 24 * time.Hour}
}

// Check refuses a policy that would delete what it cannot mean to.
func (p Policy) Check() error {
	switch {
	case p.KeepLast < 1:
		return fmt.Errorf("keep-last is %d: at least 1 version of each release is kept (the highest, which the next version is numbered after)", p.KeepLast)
	case p.KeepChannelMoves < 1:
		return fmt.Errorf("keep-channel-moves is %d: at least 1 (each channel's current version) is kept", p.KeepChannelMoves)
	case p.KeepWithin < 0 || p.KeepYankedFor < 0 || p.Grace < 0:
		return fmt.Errorf("durations cannot be negative")
	case p.Grace < store.LeaseTTL:
		return fmt.Errorf("grace is %s: it must be at least the lease time, %s, so that what a writer stores under a lease stays while its lease lives", p.Grace, store.LeaseTTL)
	}
	return nil
}

// Options control a collection.
type Options struct {
	// DryRun reports what would be deleted and writes nothing.
	DryRun bool
	// Now is the time the policy is applied at; zero means the clock.
	Now time.Time
	// Log receives a line per step; nil discards them.
	Log io.Writer
	// BatchSize is how many keys one marker names; 0 means 1000.
	BatchSize int
	// AllowEmpty collects a store with no release and no content instead
	// of failing with an *EmptyError.
	AllowEmpty bool
	// Adopt writes the store's identity (store.IdentityKey) into a store
	// that has none (one an earlier version of the provider wrote), once
	// every key there is found to be the store's; without it such a
	// location is refused with a *NotAStoreError.
	Adopt bool
}

// Kinds of objects, in the order they are deleted.
const (
	KindRelease = "release records"
	KindAction  = "build records"
	KindArchive = "archive references"
	KindListing = "listings"
	KindBlob    = "blobs"
	KindLease   = "expired leases"
	KindMarker  = "stale markers"
)

// Kinds lists the kinds in deletion order.
var Kinds = []string{KindRelease, KindAction, KindArchive, KindListing, KindBlob, KindLease, KindMarker}

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
	Retained Count            // content objects kept (blobs, listings, records, references)
	// Empty is a store with no release and no content at all.
	Empty bool
	// Tombstones written: one per version deleted.
	Tombstones int
	// Leased are keys that were to be deleted but a lease named (or
	// reached) just before: a writer is using them, so they stay.
	Leased []string
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

// UnsupportedError is a store whose backend cannot delete.
type UnsupportedError struct{ Store string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the store %s cannot delete objects, so it cannot be collected", e.Store)
}

// UntrustedError is a record the collector cannot read or trust: what it
// references is unknown, so nothing is deleted.
type UntrustedError struct {
	Key   string
	Err   error
	After bool // found after some garbage was deleted (a lease read mid-run)
}

func (e *UntrustedError) Error() string {
	what := "nothing was deleted"
	if e.After {
		what = "the collection stopped (the report lists what it deleted before; the store is consistent)"
	}
	return fmt.Sprintf("%s: %s cannot be read or trusted, so what it references is unknown (%v). "+
		"Restore it, or move it out of the store (delete it if it is not needed), and run the collection again", what, e.Key, e.Err)
}

func (e *UntrustedError) Unwrap() error { return e.Err }

// SlowError is a batch that could not be deleted within half of
// store.MarkerTTL: the collector stops, as writers stop waiting for it.
type SlowError struct{ Deleted, Left int }

func (e *SlowError) Error() string {
	return fmt.Sprintf("the collection stopped after %d deletes with %d left in the batch: a batch must finish within %s "+
		"(writers wait for it no longer); the store is consistent. Run the collection again, with a smaller --batch-size "+
		"if the store is slow", e.Deleted, e.Left, store.MarkerTTL/2)
}

// testHookDelete, when set, runs before each delete of a content key or
// release record; an error stops the collection there, as a crash would.
var testHookDelete func(key string) error

type collector struct {
	st     *store.Store
	b      store.Backend
	d      store.Deleter
	p      Policy
	o      Options
	now    time.Time
	all    map[string]store.ObjectInfo
	refs   map[string][]string // a key's references, once read
	leases map[string][]string // a live lease's keys, once read
	offset time.Duration       // the store's clock minus this machine's
	mu     sync.Mutex          // guards report and testHookDelete during deletes
	report *Report
}

func (c *collector) logf(format string, args ...any) {
	if c.o.Log != nil {
		_, _ = fmt.Fprintf(c.o.Log, format+"\n", args...) // progress only
	}
}

// Collect applies p to the store and deletes what no kept root reaches
// (nothing with o.DryRun). It returns what it deleted, also when it stops
// on an error part-way: everything it deleted was garbage, and the store
// is consistent at every step.
func Collect(ctx context.Context, st *store.Store, p Policy, o Options) (*Report, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	d, ok := st.Backend().(store.Deleter)
	if !ok {
		return nil, &UnsupportedError{Store: st.String()}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	c := &collector{st: st, b: st.Backend(), d: d, p: p, o: o, now: o.Now, refs: map[string][]string{}, leases: map[string][]string{},
		report: &Report{DryRun: o.DryRun, Deleted: map[string]Count{}}}
	// Listed and identified before anything is written: a mistyped store
	// is found empty, and a folder of the user's is no store; either is
	// left as it was.
	if err := c.inventory(ctx); err != nil {
		return nil, err
	}
	found, err := c.identify(ctx)
	if err != nil {
		return nil, err
	}
	if c.report.Empty && !o.AllowEmpty {
		return c.report, &EmptyError{Store: st.String()}
	}
	if !found && len(c.all) == 0 {
		return c.report, nil // nothing there at all, and no store: nothing to collect, and nothing is written
	}
	if !found {
		if err := c.adopt(ctx); err != nil {
			return nil, err
		}
	}
	if !o.DryRun {
		if err := c.probeClock(ctx); err != nil {
			return nil, err
		}
	}
	if c.now.IsZero() {
		c.now = c.storeNow()
	}
	versions, err := c.versions(ctx)
	if err != nil {
		return nil, err
	}
	kept, err := c.mark(ctx, versions)
	if err != nil {
		return nil, err
	}
	err = c.sweep(ctx, versions, kept)
	var untrusted *UntrustedError
	if errors.As(err, &untrusted) && c.report.Total().Objects > 0 {
		untrusted.After = true
	}
	return c.report, err
}

// EmptyError is a store with no release and no content: most likely a
// mistyped --store. Nothing was written.
type EmptyError struct{ Store string }

func (e *EmptyError) Error() string {
	return fmt.Sprintf("the store %s holds no releases and no content, so it was left as it is: check --store (a mistyped "+
		"path or prefix is an empty store), or pass --allow-empty when an empty store is expected", e.Store)
}

// listed are the families whose folders (store.Family.Dir) the collector
// lists, in that order: "releases/" holds the index entries, yanks and
// tombstones too, and "gc/" the markers and the identity.
var listed = []store.Family{store.FamilyVersion, store.FamilyMove, store.FamilyAction, store.FamilyArchive,
	store.FamilyTree, store.FamilyBlob, store.FamilyLease}

// inventory lists the store. Records are listed before what they name, so
// that an object stored while listing is either listed with what it names,
// or names objects that are young or leased.
func (c *collector) inventory(ctx context.Context) error {
	c.all = map[string]store.ObjectInfo{}
	for _, f := range listed {
		infos, err := c.d.ListInfo(ctx, f.Dir())
		if err != nil {
			return err
		}
		for _, i := range infos {
			c.all[i.Key] = i
		}
	}
	c.logf("listed %s in %s", count(len(c.all), "objects"), c.st)
	c.report.Empty = true
	for k := range c.all {
		if isContent(k) || strings.HasPrefix(k, store.FamilyVersion.Dir()) {
			c.report.Empty = false
			break
		}
	}
	return nil
}

// probeClock measures the store's clock against this machine's, so that
// ages (of objects, leases, markers) are measured on the clock that
// stamped them: it stores an empty marker (which names nothing, so no
// writer waits for it), reads its time, and deletes it.
func (c *collector) probeClock(ctx context.Context) error {
	key := store.MarkerKey(store.NewObjectID(time.Now()))
	before := time.Now()
	if err := c.b.Create(ctx, key, bytes.NewReader(store.MarkerBody(nil))); err != nil {
		return err
	}
	after := time.Now()
	infos, err := c.d.ListInfo(ctx, key)
	if err != nil {
		return err
	}
	if len(infos) == 1 {
		c.offset = infos[0].ModTime.Sub(before.Add(after.Sub(before) / 2))
		c.logf("the store's clock is %s ahead of this machine's", c.offset.Round(time.Second))
	}
	return c.d.Delete(ctx, key)
}

// storeNow is the time on the store's clock.
func (c *collector) storeNow() time.Time { return time.Now().Add(c.offset) }

// version is one published version and whether the policy keeps it.
type version struct {
	name, version string
	record        *release.Record
	keep          bool
	why           string
}

func (v *version) String() string { return v.name + "@" + v.version }

// versions reads every release record, yank state and channel history
// and applies the policy.
func (c *collector) versions(ctx context.Context) ([]*version, error) {
	byName := map[string][]string{}
	channels := map[[2]string]bool{}
	for k := range c.all {
		switch key, ok := store.ParseKey(k); {
		case key.Family == store.FamilyVersion && !ok:
			return nil, &UntrustedError{Key: k, Err: errors.New("it is not a release record's key")}
		case key.Family == store.FamilyVersion:
			byName[key.Release] = append(byName[key.Release], key.Version)
		case key.Family == store.FamilyMove:
			// Malformed or not: the channel's history reads (and
			// refuses) every key in its folder.
			channels[[2]string{key.Release, key.Channel}] = true
		}
	}
	pinned := map[string]bool{} // name@version a channel window keeps
	for rc := range channels {
		hist, err := release.History(ctx, c.b, rc[0], rc[1], c.p.KeepChannelMoves)
		if err != nil {
			return nil, &UntrustedError{Key: store.MovesPrefix(rc[0], rc[1]), Err: err}
		}
		for _, m := range hist {
			pinned[rc[0]+"@"+m.To] = true
			if m.From != "" {
				pinned[rc[0]+"@"+m.From] = true
			}
		}
	}
	var out []*version
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		yanks, err := release.Yanks(ctx, c.b, name)
		if err != nil {
			return nil, &UntrustedError{Key: store.YanksPrefix(name), Err: err}
		}
		sorted := versions.Sorted(byName[name])
		if len(sorted) != len(byName[name]) {
			return nil, &UntrustedError{Key: store.VersionsPrefix(name), Err: errors.New("a version there is not a version")}
		}
		// Counted from the highest down: stable versions not yanked (what
		// constraints and the latest resolve to) count for keep-last; a
		// pre-release above every stable version is the next release in
		// the making and is kept until a stable one passes it.
		stable, stableSeen := 0, false
		for i := len(sorted) - 1; i >= 0; i-- {
			v := sorted[i].Original()
			rec, err := release.Get(ctx, c.b, name, v)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since it was listed (another collector)
			}
			if err != nil {
				return nil, &UntrustedError{Key: release.VersionKey(name, v), Err: err}
			}
			ver := &version{name: name, version: v, record: rec}
			y := yanks[v]
			yanked := y != nil && y.Yanked
			pre := sorted[i].Prerelease() != ""
			switch {
			case i == len(sorted)-1:
				ver.keep, ver.why = true, "the highest version"
			case pre && !stableSeen:
				ver.keep, ver.why = true, "a pre-release above every stable version"
			case pinned[ver.String()]:
				ver.keep, ver.why = true, "in a channel's recent history"
			case !pre && !yanked && stable < c.p.KeepLast:
				ver.keep, ver.why = true, fmt.Sprintf("among the %d highest stable versions not yanked", c.p.KeepLast)
			case c.all[release.VersionKey(name, v)].ModTime.After(c.now.Add(-c.p.Grace)):
				ver.keep, ver.why = true, "stored within the grace period, "+days(c.p.Grace)
			case c.within(rec.PublishedAt, c.p.KeepWithin):
				ver.keep, ver.why = true, "published within "+days(c.p.KeepWithin)
			case yanked && c.within(y.At, c.p.KeepYankedFor):
				ver.keep, ver.why = true, "yanked within "+days(c.p.KeepYankedFor)
			}
			if !pre {
				stableSeen = true
				if !yanked {
					stable++
				}
			}
			out = append(out, ver)
		}
	}
	return out, nil
}

// days formats a duration as the command's options take it.
func days(d time.Duration) string { return durationFlag{&d}.String() }

// within reports whether the RFC 3339 time at is within d before now. A
// time that does not parse is kept: it is not known to be old.
func (c *collector) within(at string, d time.Duration) bool {
	t, err := time.Parse(time.RFC3339, at)
	return err != nil || c.now.Sub(t) <= d
}

func (c *collector) exists(k string) bool { _, ok := c.all[k]; return ok }

// kinds are the content families, by the kind their deletes count as:
// a blob, a listing or a build record by its sha256, an archive reference
// by its listing's.
var kinds = map[store.Family]string{store.FamilyBlob: KindBlob, store.FamilyTree: KindListing,
	store.FamilyArchive: KindArchive, store.FamilyAction: KindAction}

// isContent reports whether k is a content key (exactly one the layout
// holds, of a content family): what the sweep of unreachable objects
// deletes. Anything else (a file someone put there) is never deleted.
func isContent(k string) bool {
	key, ok := store.ParseKey(k)
	return ok && kinds[key.Family] != ""
}

// references reads what key k references (store keys, existing or not):
// a listing's blobs, a release record's artifacts, a build record's output
// and log, an archive reference's blob. Results are kept: objects are
// written once.
func (c *collector) references(ctx context.Context, k string) ([]string, error) {
	if r, ok := c.refs[k]; ok {
		return r, nil
	}
	key, ok := store.ParseKey(k)
	if !ok && key.Family != store.FamilyUnknown {
		// In a family's folder, but not one of its keys: what it
		// references cannot be known.
		return nil, fmt.Errorf("it is not a key of the store's layout (%s)", key.Family)
	}
	var refs []string
	switch key.Family {
	case store.FamilyTree:
		m, err := c.st.GetTree(ctx, key.Digest)
		if err != nil {
			return nil, err
		}
		for _, e := range m.Entries {
			refs = append(refs, store.BlobKey(e.SHA256))
		}
	case store.FamilyArchive:
		a, err := c.st.GetArchiveRef(ctx, key.Format, key.Digest)
		if err != nil {
			return nil, err
		}
		refs = []string{store.BlobKey(a), store.TreeKey(key.Digest)} // the archive, and the listing it is checked by
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
	}
	c.refs[k] = refs
	return refs, nil
}

func outputKeys(r *actioncache.Record) []string {
	if r.Type == actioncache.TypeTree {
		return []string{store.TreeKey(r.Output)}
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
// each kept object's references once.
func (c *collector) closure(ctx context.Context, kept map[string]bool, roots []string, onlyExisting bool) error {
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		k := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if kept[k] || (onlyExisting && !c.exists(k)) {
			continue
		}
		kept[k] = true
		refs, err := c.references(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			// A lease names it and it is not there, or it was deleted since
			// it was listed (by another collector: it was garbage).
			continue
		}
		if err != nil {
			return &UntrustedError{Key: k, Err: err}
		}
		queue = append(queue, refs...)
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
		if isContent(k) && i.ModTime.After(young) {
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
	var more []string
	for k := range c.all {
		key, ok := store.ParseKey(k)
		switch {
		case kept[k] || !ok:
		case key.Family == store.FamilyAction:
			r, err := c.action(ctx, k, key.Digest)
			if err != nil {
				continue // a damaged record is garbage: nothing needs it
			}
			if out := outputKeys(r); kept[out[0]] {
				more = append(more, k)
			}
		case key.Family == store.FamilyArchive:
			if kept[store.TreeKey(key.Digest)] {
				more = append(more, k)
			}
		}
	}
	if err := c.closure(ctx, kept, more, true); err != nil {
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
			c.report.Retained.Bytes += i.Size
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
	err := store.ForEach(ctx, c.st.Concurrency(), len(keys), func(ctx context.Context, i int) error {
		k := keys[i]
		if key, ok := store.ParseKey(k); !ok || key.Family != family {
			return &UntrustedError{Key: k, Err: fmt.Errorf("it is not %s the provider wrote: those are named "+
				"%s<20 digits>-<16 hex digits>, and the collector deletes nothing else there", what, family.Prefix())}
		}
		ks, err := store.ReadKeys(ctx, c.b, k, marker)
		if errors.Is(err, store.ErrNotFound) {
			gone[i] = true
			return nil
		}
		if err != nil {
			return &UntrustedError{Key: k, Err: err}
		}
		named[i] = ks
		return nil
	})
	if err != nil {
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

// sweep deletes, in order, expired leases and stale markers, the versions
// the policy does not keep, and the content no kept root reaches.
func (c *collector) sweep(ctx context.Context, vs []*version, kept map[string]bool) error {
	var gone []*version
	for _, v := range vs {
		if !v.keep {
			gone = append(gone, v)
		}
	}
	// vs is by name, highest version first: deleted oldest first.
	slices.Reverse(gone)
	byKind := map[string][]string{}
	for k := range c.all {
		if kept[k] || !isContent(k) {
			continue
		}
		key, _ := store.ParseKey(k)
		byKind[kinds[key.Family]] = append(byKind[kinds[key.Family]], k)
	}
	// Only what was read and parsed as a lease or a marker goes as one.
	var leases []string
	for _, k := range c.expired(store.LeasesPrefix, c.p.Grace) {
		if _, ok := c.leases[k]; ok {
			leases = append(leases, k)
		}
	}
	stale, err := c.readProtocol(ctx, c.expired(store.MarkersPrefix, store.MarkerTTL), true)
	if err != nil {
		return err
	}
	markers := slices.Sorted(maps.Keys(stale))
	if c.o.DryRun {
		for _, v := range gone {
			c.report.Versions = append(c.report.Versions, v.String())
			c.count(KindRelease, c.versionKeys(v)...)
		}
		for _, kind := range Kinds[1:5] {
			c.count(kind, byKind[kind]...)
		}
		c.count(KindLease, leases...)
		c.count(KindMarker, markers...)
		c.logDeleted(snapshot{})
		return nil
	}
	// Expired leases and stale markers first: they protect nothing (no
	// writer waits for such a marker), and a run that stops later on
	// leaves fewer for the next one to list in every batch.
	for _, kk := range []struct {
		kind string
		keys []string
	}{{KindLease, leases}, {KindMarker, markers}} {
		kind, keys := kk.kind, kk.keys
		before := c.snapshot()
		for _, k := range keys {
			if err := c.delete(ctx, kind, k); err != nil {
				c.logDeleted(before)
				return err
			}
		}
		c.logDeleted(before)
	}
	deletedVersions := map[string]bool{}
	defer func() { // in the order of gone, whatever order the deletes ran in
		for _, v := range gone {
			if deletedVersions[v.String()] {
				c.report.Versions = append(c.report.Versions, v.String())
			}
		}
	}()
	// Release versions, a batch at a time: the record is condemned, then
	// its tombstone written, then the record goes.
	for start := 0; start < len(gone); start += c.o.BatchSize {
		batch := gone[start:min(len(gone), start+c.o.BatchSize)]
		keys := make([]string, len(batch))
		for i, v := range batch {
			keys[i] = release.VersionKey(v.name, v.version)
		}
		err := c.condemned(ctx, keys, func(ctx context.Context, k string) error {
			v := batch[slices.Index(keys, k)]
			tomb := bytes.NewReader([]byte(v.record.Digest + "\n"))
			switch err := c.b.Create(ctx, release.CollectedKey(v.name, v.version), tomb); {
			case err == nil:
				c.mu.Lock()
				c.report.Tombstones++
				c.mu.Unlock()
			case !errors.Is(err, store.ErrExists):
				return err
			}
			for _, k := range c.versionKeys(v) {
				if err := c.delete(ctx, KindRelease, k); err != nil {
					return err
				}
			}
			c.mu.Lock()
			deletedVersions[v.String()] = true
			c.mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, kind := range Kinds[1:5] {
		keys := byKind[kind]
		sort.Strings(keys)
		for start := 0; start < len(keys); start += c.o.BatchSize {
			batch := keys[start:min(len(keys), start+c.o.BatchSize)]
			err := c.condemned(ctx, batch, func(ctx context.Context, k string) error { return c.delete(ctx, kind, k) })
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// versionKeys are the keys of a version that go with it: its record. Its
// index entry and yank history stay (a few bytes each): the index is how a
// publish of the same content finds the version again, and the yank how
// it is refused if it was broken (release.PlanVersion).
func (c *collector) versionKeys(v *version) []string {
	return []string{release.VersionKey(v.name, v.version)}
}

// expired lists the objects under prefix older than ttl.
func (c *collector) expired(prefix string, ttl time.Duration) []string {
	var keys []string
	for k, i := range c.all {
		if strings.HasPrefix(k, prefix) && c.storeNow().Sub(i.ModTime) > ttl && c.now.Sub(i.ModTime) > ttl {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
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
			n.Bytes += i.Size
		}
	}
	c.report.Deleted[kind] = n
}

func (c *collector) delete(ctx context.Context, kind, k string) error {
	if testHookDelete != nil {
		c.mu.Lock()
		err := testHookDelete(k)
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil { // past the batch's time: not even a local delete
		return err
	}
	if err := c.d.Delete(ctx, k); err != nil {
		return err
	}
	c.count(kind, k)
	return nil
}

// condemned runs del for each key of batch that no live lease reaches,
// under a marker naming the batch (the collector protocol in package
// store): marker first, then the leases, then the deletes, within half of
// store.MarkerTTL of writing the marker.
func (c *collector) condemned(ctx context.Context, batch []string, del func(ctx context.Context, k string) error) error {
	start := time.Now()
	marker := store.MarkerKey(store.NewObjectID(start))
	if err := c.b.Create(ctx, marker, bytes.NewReader(store.MarkerBody(batch))); err != nil {
		return err
	}
	before := c.snapshot()
	err := c.deleteUnleased(ctx, batch, start, del)
	c.logDeleted(before)
	// The marker goes once nothing more of the batch will be deleted; a
	// collector killed part-way leaves it, and writers wait out its time.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if derr := c.d.Delete(cleanup, marker); err == nil {
		err = derr
	}
	return err
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

func (c *collector) deleteUnleased(ctx context.Context, batch []string, start time.Time, del func(ctx context.Context, k string) error) error {
	leased, err := c.leasedKeys(ctx)
	if err != nil {
		return err
	}
	protected := map[string]bool{}
	if err := c.closure(ctx, protected, leased, false); err != nil {
		return err
	}
	var todo []string
	for _, k := range batch {
		if protected[k] {
			c.report.Leased = append(c.report.Leased, k)
		} else {
			todo = append(todo, k)
		}
	}
	// Deleted Concurrency() at once: within a batch the order does not
	// matter, as every batch holds one kind (or whole versions).
	// No delete starts after a quarter of MarkerTTL, and none is still in
	// flight (or retried) after half of it: the requests' context ends
	// then, so a writer that stops waiting for the marker (after
	// MarkerTTL) never finds a key present that a late request deletes.
	budget, cancel := context.WithDeadline(ctx, start.Add(store.MarkerTTL/2))
	defer cancel()
	var done atomic.Int64
	slow := func() error { return &SlowError{Deleted: int(done.Load()), Left: len(todo) - int(done.Load())} }
	err = store.ForEach(budget, c.st.Concurrency(), len(todo), func(ctx context.Context, i int) error {
		// Wall and monotonic clocks both: a suspended machine's monotonic
		// clock stands still while writers' time runs on.
		if time.Since(start) > store.MarkerTTL/4 || time.Now().Round(0).Sub(start.Round(0)) > store.MarkerTTL/4 {
			return slow()
		}
		if err := del(ctx, todo[i]); err != nil {
			return err
		}
		done.Add(1)
		return nil
	})
	if err != nil && budget.Err() != nil && ctx.Err() == nil {
		return slow()
	}
	return err
}
