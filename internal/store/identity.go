package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Identify makes sure the store holds its identity (CheckIdentity, then
// WriteIdentity if it has none): once per Store, so that it costs one
// read per process on a store that has it, and a read and a write on a
// new one. Hold calls it before a writer's first lease.
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
	found, err := CheckIdentity(ctx, s.b)
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
