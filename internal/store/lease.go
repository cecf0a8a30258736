package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// The collector protocol. A garbage collector (package gc) deletes what
// no kept root reaches, while writers keep publishing. A writer that finds
// an object present and is about to reference it (a blob a new listing
// names, a listing a release names, a release version a channel moves to)
// must not lose it to a collector that decided a moment earlier that
// nothing referenced it. Both sides write before they read:
//
//   - A writer first stores a lease (gc/leases/<id>) naming every key it
//     will rely on, then lists the collector's markers (gc/condemned/<id>),
//     and only then checks what is present (Hold).
//   - A collector first stores a marker naming the keys it is about to
//     delete, then reads the leases, and deletes only the marked keys that
//     no lease reaches; then it removes the marker.
//
// On a store whose writes and lists are strongly consistent (a local
// directory, not a network file system shared by several machines, whose
// clients cache listings; S3 since 2020), either the collector's read of the leases
// sees the writer's lease, and it keeps the keys, or the writer's list of
// the markers sees the marker, and the writer waits until the marker is
// gone (the keys are deleted or kept; the writer's own checks of presence
// come after), or until it is older than MarkerTTL: a collector's deletes
// of a marker's keys end (or are cancelled) within half of it, so an older
// marker is a crashed collector's. A writer that stops before it writes
// anything naming the held keys deletes its lease (Lease.Drop), if it may;
// every other lease stays, and the collector removes it once older than
// its grace period (at least LeaseTTL), counting a leased key as used when
// the lease was written.
//
// Leases live under LeasesPrefix and markers under MarkersPrefix (layout.go).
const (
	leaseHeader  = "immutable-lease-v1"
	markerHeader = "immutable-condemned-v1"
)

// LeaseTTL is how long a lease protects what it names: an operation that
// holds keys must have referenced them (stored its listing, record or
// entry) within it. Variables only so that tests can lower them.
var LeaseTTL = 6 * time.Hour

// MarkerTTL bounds how long a writer waits for a collector's marker: a
// collector starts no delete of a marker's keys after MarkerTTL/4 of writing
// it and cancels any still in flight at MarkerTTL/2 (package gc).
var MarkerTTL = 2 * time.Minute

// markerPoll is how often a writer waiting for a marker looks again.
var markerPoll = 200 * time.Millisecond

// maxLease bounds what is read of a lease or a marker; leaseKeys keys (of
// at most a few hundred bytes, as the longest release and version names make
// them) fit in it.
const (
	maxLease  = 64 << 20
	leaseKeys = 100_000
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time // when it was stored, by the store's clock
}

// Deleter is a Backend a collector can run on.
type Deleter interface {
	// Delete removes the object at key, durably: once it returns, a crash
	// does not bring it back. A missing key is not an error.
	Delete(ctx context.Context, key string) error
	// ListInfo is List with each object's size and time.
	ListInfo(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// Clock is a Deleter that reads the time on its own clock (the one that
// stamps its objects' ModTime) without storing an object. The collector
// measures the store's clock on an object it stores (a marker); it reads
// a Clock only when that object does not fit (the store's disk is full),
// as the read may need more than a writer's rights and change the store's
// folder.
type Clock interface {
	StoreTime(ctx context.Context) (time.Time, error)
}

// BatchDeleter is a Deleter that deletes many keys in few requests (S3's
// DeleteObjects: up to MaxBatchDelete keys each; the local store: unlinks
// in parallel, then one fsync per directory).
type BatchDeleter interface {
	// DeleteMany removes the objects at keys, each as Delete would: once
	// it returns, a key whose result is nil is gone durably (a missing
	// key is not an error). It returns one result per key, in keys' order:
	// nil, or why that key may still be there. A failure of a request as
	// a whole is the result of each of its keys. Keys whose result is an
	// error may or may not have been deleted.
	DeleteMany(ctx context.Context, keys []string) []error
}

// MaxBatchDelete is the most keys one S3 DeleteObjects request takes.
const MaxBatchDelete = 1000

// DeleteMany deletes keys from d: in batches when d is a BatchDeleter,
// else one Delete at a time, n at once. It returns a result per key, as
// BatchDeleter.DeleteMany does; no delete starts once ctx has ended.
func DeleteMany(ctx context.Context, d Deleter, n int, keys []string) []error {
	if bd, ok := d.(BatchDeleter); ok {
		return bd.DeleteMany(ctx, keys)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(max(n, 1), max(len(keys), 1)) {
		wg.Go(func() {
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] == nil {
					errs[i] = d.Delete(ctx, keys[i])
				}
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// DeleteError is a batch of deletes of which some failed: Failed names
// them (the first few of Count), Err is the first failure. The others
// were deleted.
type DeleteError struct {
	Failed  []string
	Count   int
	Deleted int
	Err     error
}

func (e *DeleteError) Error() string {
	more := ""
	if e.Count > len(e.Failed) {
		more = fmt.Sprintf(" and %d more", e.Count-len(e.Failed))
	}
	return fmt.Sprintf("%d of %d deletes failed (%s%s; the first: %v)", e.Count, e.Count+e.Deleted, strings.Join(ShowKeys(e.Failed), ", "), more, e.Err)
}

func (e *DeleteError) Unwrap() error { return e.Err }

// Failures makes the results of DeleteMany one *DeleteError naming the
// keys that failed, or nil when none did.
func Failures(keys []string, errs []error) error {
	var e *DeleteError
	for i, err := range errs {
		if err == nil {
			continue
		}
		if e == nil {
			e = &DeleteError{Err: err}
		}
		if e.Count++; len(e.Failed) < 10 {
			e.Failed = append(e.Failed, keys[i])
		}
	}
	if e == nil {
		return nil
	}
	e.Deleted = len(keys) - e.Count
	return e
}

// NewObjectID is a fresh name for a lease or a marker: the time, for
// people reading a listing, and 64 random bits.
func NewObjectID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%020d-%s", now.UnixNano(), hex.EncodeToString(r[:]))
}

// EncodeKeys is the stored form of a lease or a marker: a header line and
// the keys, sorted and unique, one per line.
func EncodeKeys(header string, keys []string) []byte {
	ks := slices.Clone(keys)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, k := range ks {
		b.WriteString(k + "\n")
	}
	return b.Bytes()
}

// ReadKeys reads a lease (marker false) or a marker (marker true). A key
// that is gone reads as nil, ErrNotFound.
func ReadKeys(ctx context.Context, b Backend, key string, marker bool) ([]string, error) {
	header := leaseHeader
	if marker {
		header = markerHeader
	}
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(rc, maxLease+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxLease {
		return nil, fmt.Errorf("%s in %s is over %d bytes: not something this provider wrote", key, b, maxLease)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	if !sc.Scan() || sc.Text() != header {
		return nil, fmt.Errorf("%s in %s is not an %s object: it was altered behind the store's back", key, b, header)
	}
	var keys []string
	for sc.Scan() {
		if sc.Text() == "" {
			return nil, fmt.Errorf("%s in %s has an empty line: it was altered behind the store's back", key, b)
		}
		keys = append(keys, sc.Text())
	}
	return keys, sc.Err()
}

// LeaseBody is the stored form of a lease naming keys.
func LeaseBody(keys []string) []byte { return EncodeKeys(leaseHeader, keys) }

// MarkerBody is the stored form of a marker naming keys.
func MarkerBody(keys []string) []byte { return EncodeKeys(markerHeader, keys) }

// WaitError is a marker that did not go away before ctx ended.
type WaitError struct {
	Marker string
	Err    error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("a garbage collection is deleting objects this operation would reuse (%s) and did not finish before the operation was cancelled: %v. Run it again once the collection is done", e.Marker, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

// Lease is what one Hold stored. Nil (nothing stored) is a valid Lease.
type Lease struct {
	d    Deleter
	keys []string
}

// dropTimeout bounds Drop, which runs also after the caller's context
// ended (an interrupted apply still cleans up).
const dropTimeout = 10 * time.Second

// Drop deletes the lease: for a writer that stops before it writes
// anything naming the keys it held (a check failed, it was refused or
// interrupted), so that nothing relies on them any more. Never after such
// a write was attempted, even one that returned an error: it may have
// landed, and a collector running now must still see the lease. Best
// effort: a writer that may not delete (no s3:DeleteObject) leaves it, and
// the collector deletes it after its grace period.
func (l *Lease) Drop(ctx context.Context) {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	for _, k := range l.keys {
		_ = l.d.Delete(ctx, k) // best effort, see above
	}
	l.keys = nil
}

// Hold protects keys from a concurrent garbage collector for LeaseTTL:
// call it before checking whether any of them is present and relying on
// that (see the protocol above). It makes sure the store holds its
// identity (Identify, once per Store), stores one lease (one per leaseKeys
// keys) and lists the markers; when a collector is deleting one of the keys right now, it
// waits until that collector is done (at most MarkerTTL). Keys need not
// exist. On a backend that cannot delete, nothing can collect, and Hold
// does nothing (and returns a nil Lease). The caller drops the lease when
// it stops before relying on the keys (Lease.Drop); Hold drops it itself
// when it fails.
func (s *Store) Hold(ctx context.Context, keys ...string) (*Lease, error) {
	d, ok := s.b.(Deleter)
	if !ok || len(keys) == 0 {
		return nil, nil
	}
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "\n\r") {
			return nil, fmt.Errorf("invalid store key %q", k)
		}
	}
	// The first lease of a new store makes it one: a collector refuses a
	// location without its identity.
	if err := s.Identify(ctx); err != nil {
		return nil, err
	}
	l := &Lease{d: d}
	if err := s.hold(ctx, d, l, keys); err != nil {
		l.Drop(ctx)
		return nil, err
	}
	return l, nil
}

// hold is Hold, recording in l each lease it stores.
func (s *Store) hold(ctx context.Context, d Deleter, l *Lease, keys []string) error {
	// Large sets (a first publish of a big tree) go in several leases of
	// at most leaseKeys keys, so that each reads back within maxLease.
	var lease string
	for start := 0; start < len(keys); start += leaseKeys {
		lease = LeaseKey(NewObjectID(time.Now()))
		if err := s.b.Create(ctx, lease, bytes.NewReader(LeaseBody(keys[start:min(len(keys), start+leaseKeys)]))); err != nil {
			return err
		}
		l.keys = append(l.keys, lease)
	}
	markers, err := d.ListInfo(ctx, MarkersPrefix)
	if err != nil || len(markers) == 0 {
		return err
	}
	// The store's clock now: when the lease was stored.
	now := time.Now()
	if infos, err := d.ListInfo(ctx, lease); err != nil {
		return err
	} else if len(infos) == 1 {
		now = infos[0].ModTime
	}
	held := map[string]bool{}
	for _, k := range keys {
		held[k] = true
	}
	// Each marker's age grows while an earlier one is waited for: all the
	// waits together end within MarkerTTL of this call.
	start := time.Now()
	for _, m := range markers {
		age := now.Sub(m.ModTime) + time.Since(start)
		if age > MarkerTTL {
			continue // a crashed collector's: it deletes nothing more
		}
		condemned, err := ReadKeys(ctx, s.b, m.Key, true)
		if errors.Is(err, ErrNotFound) {
			continue // the collector is done
		}
		// A marker that does not read (edited by hand) may name anything:
		// waited out like one naming these keys, never trusted.
		if err == nil && !slices.ContainsFunc(condemned, func(k string) bool { return held[k] }) {
			continue
		}
		began := time.Now()
		gone, err := s.waitMarker(ctx, m.Key, MarkerTTL-age)
		if err != nil {
			return err
		}
		if s.Waited != nil {
			s.Waited(ctx, MarkerWait{Marker: m.Key, Waited: time.Since(began), Expired: !gone,
				Expires: began.Add(MarkerTTL - age)})
		}
	}
	return nil
}

// MarkerWait is a wait of Hold for a collector's marker, once over.
type MarkerWait struct {
	Marker string
	// Waited is how long it took.
	Waited time.Duration
	// Expired: the marker was still there when it expired (at Expires,
	// on this machine's clock): the collection that wrote it was
	// interrupted (killed, or its machine lost), and deletes nothing
	// more; until the next collection removes it, nothing waits for it
	// any more. Otherwise the collection finished.
	Expired bool
	Expires time.Time
}

// waitMarker waits until the marker is gone (gone true), or for at most d
// (measured on this process's clock, from an age measured on the store's:
// no two clocks are compared).
func (s *Store) waitMarker(ctx context.Context, marker string, d time.Duration) (gone bool, err error) {
	if s.Waiting != nil {
		s.Waiting(ctx, marker, d)
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ok, err := s.b.Exists(ctx, marker)
		if err != nil || !ok {
			return err == nil, err
		}
		t := time.NewTimer(min(markerPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, &WaitError{Marker: marker, Err: ctx.Err()}
		case <-t.C:
		}
	}
	return false, nil // a crashed collector's marker: it deletes nothing more
}
