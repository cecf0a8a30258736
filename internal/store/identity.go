package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// The store's identity. A directory or a bucket prefix is a store when it
// holds IdentityKey: written once, by the first writer (Hold writes it
// before its first lease; Identify), and checked by anything that deletes
// (package gc) before it touches anything, so that a collector pointed at
// a folder of the user's refuses it, untouched. A store written before the
// identity existed gets it from the next writer, or from the collector
// after it checked that every key there is the store's (gc --adopt-store).
// Its key is IdentityKey (layout.go).
const (
	// IdentityFormat names what the object says; IdentityVersion is the
	// layout's version: a store of a later version is refused.
	IdentityFormat  = "terraform-provider-immutable store"
	IdentityVersion = 1
)

// identity is the stored form of the identity: this exact encoding.
type identity struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// IdentityBody is the stored form of the identity.
func IdentityBody() []byte {
	b, err := json.Marshal(identity{Format: IdentityFormat, Version: IdentityVersion})
	if err != nil {
		panic(err) // a string and an int always encode
	}
	return append(b, '\n')
}

// IdentityError is an identity object that is not the one this provider
// writes: the store is another layout's, or the object was altered.
type IdentityError struct {
	Key, Store string
	Detail     string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("%s in %s %s", e.Key, e.Store, e.Detail)
}

// BackendError marks it as a store.BackendError: it is the store's
// problem, not the content's.
func (e *IdentityError) BackendError() {}

// CheckIdentity reads the store's identity: found false (and no error) when
// there is none, an *IdentityError when it is not this provider's.
func CheckIdentity(ctx context.Context, b Backend) (found bool, err error) {
	rc, err := b.Open(ctx, IdentityKey)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = rc.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(rc, 4097))
	if err != nil {
		return false, fmt.Errorf("reading %s in %s: %w", IdentityKey, b, err)
	}
	if bytes.Equal(data, IdentityBody()) {
		return true, nil
	}
	e := &IdentityError{Key: IdentityKey, Store: b.String()}
	var id identity
	if json.Unmarshal(data, &id) == nil && id.Format == IdentityFormat && id.Version > IdentityVersion {
		e.Detail = fmt.Sprintf("says the store has layout version %d, which a later version of the provider wrote; this one knows "+
			"version %d: use the later version", id.Version, IdentityVersion)
	} else {
		e.Detail = fmt.Sprintf("is not the store identity this provider writes (%s): the object was altered, or this "+
			"is not a store of this provider", bytes.TrimSpace(IdentityBody()))
	}
	return true, e
}

// WriteIdentity stores the identity unless the store holds it already (a
// concurrent first writer's is the same); an identity that differs is an
// *IdentityError, and is left as it is.
func WriteIdentity(ctx context.Context, b Backend) error {
	err := b.Create(ctx, IdentityKey, bytes.NewReader(IdentityBody()))
	if !errors.Is(err, ErrExists) {
		return err
	}
	_, err = CheckIdentity(ctx, b)
	return err
}

// Identify makes sure the store holds its identity (CheckLocation, then
// WriteIdentity if it has none): once per Store, so that it costs one
// read per process on a store that has it, and a read, a listing and a
// write on a new one (the listing of a store an earlier version wrote is
// the whole store, once). Hold calls it before a writer's first lease. A
// location that holds anything outside the store's layout is not made a
// store: that is a *ForeignError, and nothing is written.
//
// A writer the backend refuses the write (a BackendError: an S3 role
// granted s3:PutObject on some prefixes only) goes on without it: the
// identity is for collectors, and the next writer that may write it does,
// or gc --adopt-store; a store that refuses every write fails the
// writer's own writes.
func (s *Store) Identify(ctx context.Context) error {
	if s.identified.Load() {
		return nil
	}
	s.identifying.Lock()
	defer s.identifying.Unlock()
	if s.identified.Load() {
		return nil
	}
	found, err := CheckLocation(ctx, s.b)
	if err == nil && !found {
		err = WriteIdentity(ctx, s.b)
		var ie *IdentityError
		if be := BackendError(nil); errors.As(err, &be) && !errors.As(err, &ie) {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	s.identified.Store(true)
	return nil
}

// ForeignError is a location without the store's identity that holds keys
// outside the store's layout (a folder of the user's, with .ssh/ and
// Documents/): it is not a store, and no writer makes it one, as the
// collector would then take it for one. Foreign are the first few keys,
// Count how many there are.
type ForeignError struct {
	Store   string
	Foreign []string
	Count   int
}

func (e *ForeignError) Error() string {
	n := fmt.Sprintf("%d entries", e.Count)
	if e.Count == 1 {
		n = "1 entry"
	}
	return fmt.Sprintf("%s is not a store: it has no %s and holds %s outside the store's layout, such as %s, so nothing was "+
		"written to it. Pick an empty or new directory (or prefix) for the store; if it is a store an earlier version of "+
		"the provider wrote, move the files that are not the store's out of it and run `terraform-provider-immutable gc "+
		"--adopt-store`, which checks the same before it writes %s", e.Store, IdentityKey, n,
		strings.Join(ShowKeys(e.Foreign), ", "), IdentityKey)
}

// ShowKeys are keys to print (usertext.Show): a name someone put in the
// store cannot reorder or recolour the message.
func ShowKeys(keys []string) []string {
	shown := make([]string, len(keys))
	for i, k := range keys {
		shown[i] = usertext.Show(k)
	}
	return shown
}

// foreignShown is how many foreign keys a *ForeignError names.
const foreignShown = 5

// Foreign returns the keys outside the store's layout (those ParseKey
// does not accept): the first few of keys' order, and how many there are.
// It is the one rule for "this location holds something that is not the
// store's", for writers (CheckLocation) and gc --adopt-store alike.
func Foreign(keys []string) (first []string, n int) {
	for _, k := range keys {
		if _, ok := ParseKey(k); !ok {
			if n++; len(first) < foreignShown {
				first = append(first, k)
			}
		}
	}
	return first, n
}

// CheckLocation is CheckIdentity, and when there is no identity, a listing
// of the location: one holding keys outside the store's layout (Foreign)
// is a *ForeignError. Found false and no error: an empty or missing
// location, or a store an earlier version wrote, that may become a store.
// A backend that refuses the listing (a BackendError: a role that may
// list some prefixes only) is not checked, and is found false, as a
// location that may become a store: the identity is for collectors, which
// check the same (gc --adopt-store) before they write it.
func CheckLocation(ctx context.Context, b Backend) (found bool, err error) {
	found, err = CheckIdentity(ctx, b)
	if err != nil || found {
		return found, err
	}
	keys, err := b.List(ctx, "")
	if be := BackendError(nil); errors.As(err, &be) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if first, n := Foreign(keys); n > 0 {
		return false, &ForeignError{Store: b.String(), Foreign: first, Count: n}
	}
	return false, nil
}
