// Package gc is the store's garbage collector: it applies a retention
// policy to the releases of a store and deletes every object that no kept
// root reaches, while writers keep publishing.
//
// Roots are the release versions the policy keeps, every object stored
// within the grace period, and every key a live lease names (see the
// collector protocol in package store). From the roots it keeps, closing
// over references: a listing keeps its blobs; a release version its
// artifacts (a listing or a blob) and the records of its images; an image
// record its manifest and config (blobs) and the tree of each of its
// layers (a listing, or a file's blob); a build record its output and its
// log; an archive reference its archive's blob. A build record is kept
// when its output is kept, and an archive reference when its listing is.
// An image record no kept version names is treated as a listing no kept
// version names: kept while it is young (the grace period) or leased,
// deleted after; its blobs and trees then go unless something else keeps
// them.
//
// Everything else under blobs/, trees/, archives/, actions/ and images/
// goes, as do signatures of records not kept and, past the grace period,
// any object in a record's signature folder that is not a signature; and
// so do the records of the versions outside the policy (a tombstone is
// written first, so that the version is never published again; its index
// entry and yank history stay, so that its content is found again and, if
// it was yanked, refused). Deletes go in an order that keeps the store's invariants at
// every step, so that a collector killed at any point leaves a consistent
// store: release records first, then image records, build records,
// archive references, listings, and blobs last. Each batch is announced by a marker, the
// leases are read again, and only then is anything deleted. Expired leases
// and stale markers go first, under no marker: they protect nothing, and
// on a full disk they free the room the markers need (a batch whose
// marker does not fit is condemned in halves). A run with nothing to
// delete writes nothing.
//
// Channel histories, tombstones, index entries, yank histories and
// anything the collector does not recognise are never deleted. A record it cannot read or trust stops the
// collection before anything is deleted: what it references is unknown.
// So does anything under gc/leases/ or gc/condemned/ that does not parse
// as a lease or a marker: only those are deleted there, once expired. The
// error names every such object found (the first maxUntrusted).
//
// The collector touches only a store: a location holding the store's
// identity (store.IdentityKey), or, with Options.Adopt, one whose every
// key is a store's, which it then writes the identity into (identity.go).
// Anything else is refused before anything is written.
//
// The files follow the run: policy.go says which versions are kept and
// why, mark.go what every kept root reaches, sweep.go deletes the rest
// under markers, report.go counts and logs it; identity.go checks (or,
// adopting, writes) the store's identity, cli.go is the gc command.
//
// The package has no dependency on Terraform.
package gc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

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
	// Warn receives what the user should see without Log: that the run
	// waits for another collection's marker (Report.Markers); nil
	// discards it.
	Warn io.Writer
	// Adopt writes the store's identity (store.IdentityKey) into a store
	// that has none (one an earlier version of the provider wrote), once
	// every key there is found to be the store's; without it such a
	// location is refused with a *NotAStoreError.
	Adopt bool
}

// UnsupportedError is a store whose backend cannot delete.
type UnsupportedError struct{ Store string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the store %s cannot delete objects, so it cannot be collected", e.Store)
}

// UntrustedError is a record the collector cannot read or trust: what it
// references is unknown, so nothing is deleted. Its keys come from the
// store's listing: printed as usertext.Show does, a name holding a newline
// or a bidirectional control cannot forge a line of the message. Others are more found in
// the same run (the first maxUntrusted in all, by key), and More how many
// beyond those.
type UntrustedError struct {
	Key    string
	Err    error
	After  bool // found after some garbage was deleted (a lease read mid-run)
	Others []*UntrustedError
	More   int
}

// maxUntrusted is how many objects an *UntrustedError names.
const maxUntrusted = 20

func (e *UntrustedError) Error() string {
	what := "nothing was deleted"
	if e.After {
		what = "the collection stopped (the report lists what it deleted before; the store is consistent)"
	}
	if len(e.Others) == 0 && e.More == 0 {
		return fmt.Sprintf("%s: %s cannot be read or trusted, so what it references is unknown (%v). "+
			"Restore it, or move it out of the store (delete it if it is not needed), and run the collection again", what, usertext.Show(e.Key), e.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d objects cannot be read or trusted, so what they reference is unknown:\n  %s (%v)", what,
		1+len(e.Others)+e.More, usertext.Show(e.Key), e.Err)
	for _, o := range e.Others {
		fmt.Fprintf(&b, "\n  %s (%v)", usertext.Show(o.Key), o.Err)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  and %d more", e.More)
	}
	b.WriteString("\nRestore them, or move them out of the store (delete those not needed), and run the collection again")
	return b.String()
}

// untrusted makes the *UntrustedErrors among errs one, naming the first
// maxUntrusted by key and counting the rest; any other error (the first)
// comes before them, and nil when there is none.
func untrusted(errs []error) error {
	var all []*UntrustedError
	for _, err := range errs {
		var u *UntrustedError
		switch {
		case err == nil:
		case errors.As(err, &u):
			all = append(all, u)
			all = append(all, u.Others...)
		default:
			return err
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b *UntrustedError) int { return strings.Compare(a.Key, b.Key) })
	all = slices.CompactFunc(all, func(a, b *UntrustedError) bool { return a.Key == b.Key })
	more := 0
	for _, u := range all {
		more += u.More
	}
	if len(all) > maxUntrusted {
		more += len(all) - maxUntrusted
		all = all[:maxUntrusted]
	}
	first := &UntrustedError{Key: all[0].Key, Err: all[0].Err, After: all[0].After, More: more}
	for _, u := range all[1:] {
		first.Others = append(first.Others, &UntrustedError{Key: u.Key, Err: u.Err})
	}
	return first
}

func (e *UntrustedError) Unwrap() error { return e.Err }

// isBackend tells an error of the backend itself (a store.BackendError:
// access denied, a server that keeps failing, a store not reached) from
// one of the content read: it stops the collection at once, as reading
// the rest from that store is as vain, and the objects are not at fault;
// only content errors are collected as *UntrustedErrors, all named.
func isBackend(err error) bool {
	be := store.BackendError(nil)
	return errors.As(err, &be)
}

type collector struct {
	st     *store.Store
	b      store.Backend
	d      store.Deleter
	p      Policy
	o      Options
	now    time.Time
	all    map[string]object   // the inventory: every key listed
	refs   map[string][]string // a key's references, once read (guarded by refsMu)
	refsMu sync.Mutex
	leases map[string][]string // a live lease's keys, once read
	stale  map[string][]string // an expired marker's keys, once read
	offset time.Duration       // the store's clock minus this machine's
	mu     sync.Mutex          // guards report and testHookDelete during deletes
	// leasesMu serialises reading the leases (concurrent batches do).
	leasesMu sync.Mutex
	report   *Report
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
		stale:  map[string][]string{},
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
	if !found && c.report.Empty {
		// Nothing of a store's, and no identity: a mistyped, empty
		// location — unless it holds something else (a folder of the
		// user's with notes.txt), which is no store at all, and not one
		// --allow-empty may collect.
		foreign, err := c.foreign(ctx)
		if err != nil {
			return nil, err
		}
		if foreign != nil {
			return nil, foreign
		}
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
	// Planned on this machine's clock (less clockSlack for a real run),
	// which the dry run reports by too; then, if there is anything to
	// delete, on the store's clock, measured first. planStart is this
	// machine's time when the plan began: a plan that takes long must not
	// hide a store whose clock is behind.
	planStart := planClock()
	if c.now.IsZero() {
		c.now = planStart
		if !o.DryRun {
			c.now = c.now.Add(-clockSlack)
		}
	}
	pl, err := c.planAll(ctx)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		return c.report, c.sweep(ctx, pl)
	}
	if pl.empty() {
		c.logf("nothing to delete: nothing is written")
		return c.report, nil
	}
	if err := c.probeClock(ctx); err != nil {
		return nil, err
	}
	if o.Now.IsZero() && c.offset < -clockSlack {
		// The store's clock is behind this machine's by more than the
		// slack: objects are younger on it than planned. Planned again,
		// at the store's time when the plan began.
		c.now = planStart.Add(c.offset)
		c.report.Kept, c.report.Retained = nil, Count{}
		if pl, err = c.planAll(ctx); err != nil {
			return nil, err
		}
	}
	// The plan judged leases and markers before the store's clock was
	// measured: judged again on it (in memory; only markers that expired
	// since are read).
	if err := c.planProtocol(ctx, pl); err != nil {
		return nil, err
	}
	err = c.sweep(ctx, pl)
	var untrusted *UntrustedError
	if errors.As(err, &untrusted) && c.report.Total().Objects > 0 {
		untrusted.After = true
	}
	return c.report, err
}

// planClock is this machine's clock: the one a collection without
// Options.Now is planned on, and the one the store's is measured against
// (the offset); tests move it to make what they stored old where they
// cannot age it, or to make a plan take long.
var planClock = time.Now

// clockSlack is how far behind this machine's clock a real run plans: the
// plan holds unless the store's clock, measured after it (probeClock), is
// further behind still, when it is planned again.
const clockSlack = time.Minute

// planAll applies the policy at c.now, marks what it keeps and plans what
// goes.
//
// What it cannot trust stops it, every such object named at once (the
// first maxUntrusted): release records, channel histories and yanks, then
// leases and stale markers, read too when a record stopped it.
func (c *collector) planAll(ctx context.Context) (*plan, error) {
	versions, err := c.versions(ctx)
	if errors.As(err, new(*UntrustedError)) {
		_, lerr := c.leasedKeys(ctx)
		_, merr := c.readProtocol(ctx, c.expired(store.MarkersPrefix, store.MarkerTTL), true)
		return nil, untrusted([]error{err, onlyUntrusted(lerr), onlyUntrusted(merr)})
	}
	if err != nil {
		return nil, err
	}
	kept, err := c.mark(ctx, versions)
	if errors.As(err, new(*UntrustedError)) {
		_, merr := c.readProtocol(ctx, c.expired(store.MarkersPrefix, store.MarkerTTL), true)
		return nil, untrusted([]error{err, onlyUntrusted(merr)})
	}
	if err != nil {
		return nil, err
	}
	return c.plan(ctx, versions, kept)
}

// onlyUntrusted is err if it is an *UntrustedError, else nil: a read made
// only to name more of them fails in vain.
func onlyUntrusted(err error) error {
	if errors.As(err, new(*UntrustedError)) {
		return err
	}
	return nil
}

// EmptyError is a store with no release and no content: most likely a
// mistyped --store. Nothing was written.
type EmptyError struct{ Store string }

func (e *EmptyError) Error() string {
	return fmt.Sprintf("the store %s holds no releases and no content, so it was left as it is: check --store (a mistyped "+
		"path or prefix is an empty store), or pass --allow-empty when an empty store is expected", e.Store)
}

// listed are the families whose folders (store.Family.Dir) the collector
// lists, in that order (signatures before the records they sign):
// "releases/" holds the index entries, yanks and
// tombstones too, and "gc/" the markers and the identity.
var listed = []store.Family{store.FamilySignature, store.FamilyVersion, store.FamilyMove, store.FamilyAction, store.FamilyArchive,
	store.FamilyImage, store.FamilyListing, store.FamilyBlob, store.FamilyLease}

// inventory lists the store. Records are listed before what they name, so
// that an object stored while listing is either listed with what it names,
// or names objects that are young or leased. A family whose keys fan out
// over two-hex-digit folders is listed folder by folder, Concurrency() at
// once (store.ListFamily); families one after another.
func (c *collector) inventory(ctx context.Context) error {
	c.all = map[string]object{}
	// A local store with symbolic links in its folders is refused, before
	// anything is written, naming every link (every family is listed):
	// what is behind one is neither listed nor deleted through it, so the
	// records there are unknown, and the objects they reference would
	// look unreachable.
	var links *store.LinkError
	for _, f := range listed {
		infos, err := store.ListFamily(ctx, c.d, f, c.st.Concurrency())
		if le := (*store.LinkError)(nil); errors.As(err, &le) {
			if links == nil {
				links = &store.LinkError{Store: le.Store}
			}
			links.Links = append(links.Links, le.Links...)
			continue
		}
		if err != nil {
			return err
		}
		for _, i := range infos {
			c.all[i.Key] = object{key: i.Key, size: i.Size, mod: i.ModTime.UnixNano()}
		}
	}
	if links != nil {
		slices.Sort(links.Links)
		return links
	}
	c.logf("listed %s in %s", count(len(c.all), "objects"), c.st)
	c.report.Empty = true
	for k := range c.all {
		if key, _ := store.ParseKey(k); key.Family != store.FamilySignature && isContent(k) || strings.HasPrefix(k, store.FamilyVersion.Dir()) {
			c.report.Empty = false
			break
		}
	}
	return nil
}

// probeClock measures the store's clock against this machine's, so that
// ages (of objects, leases, markers) are measured on the clock that
// stamped them: the collector stores an empty marker (which names
// nothing, so no writer waits for it), reads its time, and deletes it.
// Only when the store's disk is too full for that marker does it read a
// store's clock without storing anything (store.Clock: a file store),
// the one way to measure it there.
func (c *collector) probeClock(ctx context.Context) error {
	key := store.MarkerKey(store.NewObjectID(time.Now()))
	before := planClock()
	if err := c.b.Create(ctx, key, bytes.NewReader(store.MarkerBody(nil))); err != nil {
		clock, ok := c.d.(store.Clock)
		if !ok || !isFull(err) {
			return err
		}
		before := planClock()
		t, err := clock.StoreTime(ctx)
		if err != nil {
			return err
		}
		c.setOffset(t, before, planClock())
		return nil
	}
	after := planClock()
	infos, err := c.d.ListInfo(ctx, key)
	if err != nil {
		return err
	}
	if len(infos) == 1 {
		c.setOffset(infos[0].ModTime, before, after)
	}
	return c.d.Delete(ctx, key)
}

// setOffset takes the store's time t, read between before and after.
func (c *collector) setOffset(t, before, after time.Time) {
	c.offset = t.Sub(before.Add(after.Sub(before) / 2))
	c.logf("the store's clock is %s ahead of this machine's", c.offset.Round(time.Second))
}

// storeNow is the time on the store's clock.
func (c *collector) storeNow() time.Time { return planClock().Add(c.offset) }

// object is what the inventory keeps of a key, compactly (32 bytes): the
// key again (the one string references share: listed), its size, and
// its time on the store's clock.
type object struct {
	key  string
	size int64
	mod  int64 // UnixNano
}

func (o object) modTime() time.Time { return time.Unix(0, o.mod) }

func (c *collector) exists(k string) bool { _, ok := c.all[k]; return ok }

// kinds are the content families, by the kind their deletes count as:
// a blob, a listing or a build record by its sha256, an archive reference
// by its listing's, an image record by its manifest's, a signature by its
// record's and its key's.
var kinds = map[store.Family]string{store.FamilyBlob: KindBlob, store.FamilyListing: KindListing,
	store.FamilyArchive: KindArchive, store.FamilyAction: KindAction, store.FamilyImage: KindImage,
	store.FamilySignature: KindSignature}

// isContent reports whether k is a content key (exactly one the layout
// holds, of a content family), or a stray object in a record's signature
// folder: what the sweep of unreachable objects deletes. Anything else (a
// file someone put there) is never deleted.
func isContent(k string) bool {
	key, ok := store.ParseKey(k)
	return ok && kinds[key.Family] != "" || isStraySignature(k)
}

// isStraySignature reports whether k lies in a record's signature folder
// (store.SignaturesPrefix of a digest) without being a signature's key:
// junk someone stored beside the record's signatures (readers ignore it).
// It is collected as an orphan signature is, once older than the grace
// period, whatever its name; nothing outside such a folder is.
func isStraySignature(k string) bool {
	if key, ok := store.ParseKey(k); ok || key.Family != store.FamilySignature {
		return false
	}
	rest, found := strings.CutPrefix(k, store.FamilySignature.Prefix())
	if !found {
		return false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[2] == "" || strings.Contains(parts[2], "\\") {
		return false
	}
	sum, err := digest.ParseHex(parts[1])
	return err == nil && strings.HasPrefix(k, store.SignaturesPrefix(sum))
}
