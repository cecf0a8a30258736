package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// NotAStoreError is a location that does not say it is a store
// (store.IdentityKey), or says it is another one: the collector read its
// listing and wrote nothing.
type NotAStoreError struct {
	Store string
	// Err is the identity's problem (a *store.IdentityError), or nil when
	// there is no identity.
	Err error
	// Foreign are keys outside the store's layout that made --adopt-store
	// refuse (the first few), and how many there are.
	Foreign      []string
	ForeignCount int
	// Adopt is whether --adopt-store was given.
	Adopt bool
}

func (e *NotAStoreError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("%v. The store was left as it is: check --store, or run the collector of the provider version "+
			"that writes this store", e.Err)
	case e.ForeignCount > 0 && !e.Adopt:
		return fmt.Sprintf("%s has no %s and holds %s outside the store's layout, such as %s: it is not a store, so it "+
			"was left as it is. Check --store (is it a folder of yours?)", e.Store, store.IdentityKey,
			count(e.ForeignCount, "keys"), strings.Join(store.ShowKeys(e.Foreign), ", "))
	case e.ForeignCount > 0:
		return fmt.Sprintf("%s has no %s and holds %s outside the store's layout, such as %s: it is not a store, or files "+
			"were put into it, so --adopt-store left it as it is. Check --store; if it is the store, move those files out of it "+
			"and run again", e.Store, store.IdentityKey, count(e.ForeignCount, "keys"), strings.Join(store.ShowKeys(e.Foreign), ", "))
	}
	return fmt.Sprintf("%s has no %s, which every store the provider writes holds, so it was left as it is: check --store "+
		"(is it a folder of yours?). A store last written by an earlier version of the provider has none yet: the provider's "+
		"next publish to it writes it, or run the collection once with --adopt-store, which checks that every key there "+
		"is the store's before it writes %s", e.Store, store.IdentityKey, store.IdentityKey)
}

func (e *NotAStoreError) Unwrap() error { return e.Err }

// identify reads the store's identity: found false when there is none, a
// *NotAStoreError when it is not one this collector knows. It writes
// nothing.
func (c *collector) identify(ctx context.Context) (found bool, err error) {
	found, err = store.CheckIdentity(ctx, c.b)
	if ie := (*store.IdentityError)(nil); errors.As(err, &ie) {
		return false, &NotAStoreError{Store: c.st.String(), Err: err}
	}
	return found, err
}

// adopt makes a location without identity that holds something a store,
// with Options.Adopt, once every key there is one a store holds (one
// store.ParseKey accepts): it
// writes the identity (not in a dry run). Anything else, and any location
// without Adopt, is a *NotAStoreError, and nothing is written.
func (c *collector) adopt(ctx context.Context) error {
	if !c.o.Adopt {
		return &NotAStoreError{Store: c.st.String()}
	}
	keys, err := c.b.List(ctx, "")
	if err != nil {
		return err
	}
	if e := c.foreignOf(keys); e != nil {
		return e
	}
	c.report.Adopted = true
	if c.o.DryRun {
		c.logf("would write %s: every one of the %d keys is the store's", store.IdentityKey, len(keys))
		return nil
	}
	if err := store.WriteIdentity(ctx, c.b); err != nil {
		if ie := (*store.IdentityError)(nil); errors.As(err, &ie) {
			err = &NotAStoreError{Store: c.st.String(), Err: err}
		}
		return err
	}
	c.logf("wrote %s: every one of the %d keys is the store's", store.IdentityKey, len(keys))
	return nil
}

// foreign lists the location: a *NotAStoreError naming the keys outside
// the store's layout, or nil when there are none.
func (c *collector) foreign(ctx context.Context) (*NotAStoreError, error) {
	keys, err := c.b.List(ctx, "")
	if err != nil {
		return nil, err
	}
	return c.foreignOf(keys), nil
}

func (c *collector) foreignOf(keys []string) *NotAStoreError {
	first, n := store.Foreign(keys) // the writers' rule (store.CheckLocation)
	if n == 0 {
		return nil
	}
	return &NotAStoreError{Store: c.st.String(), Adopt: c.o.Adopt, Foreign: first, ForeignCount: n}
}
