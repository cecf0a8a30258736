package provider

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// privateArchiveListing is the private-state key holding the digest of
// the listing whose archive archive_sha256 is: the tree itself, or the
// one-entry listing of a file source (its name and exec bit, which the
// content digest does not cover). A prior archive hash is reused at plan
// only for the same listing.
const privateArchiveListing = "archive_listing"

// privateMissingSource marks the plan of an artifact whose source is gone,
// for the second PlanResourceChange core makes to plan a replacement.
const privateMissingSource = "missing_source"

// privateValue reads a private-state key; nil when unset or unreadable.
func privateValue(ctx context.Context, p privateGetter, key string) []byte {
	if p == nil {
		return nil
	}
	b, diags := p.GetKey(ctx, key)
	if diags.HasError() {
		return nil
	}
	return b
}

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func priorArchiveListing(ctx context.Context, p privateGetter) string {
	var s string
	if b := privateValue(ctx, p, privateArchiveListing); len(b) == 0 || json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s
}

func setArchiveListing(ctx context.Context, p privateSetter, listing string) diag.Diagnostics {
	b, _ := json.Marshal(listing) // a string always encodes
	return p.SetKey(ctx, privateArchiveListing, b)
}

// privateReleaseSeen is the private-state key of an immutable_release
// holding the highest version of its release in the store when the state
// was last refreshed or applied. Both plans of an apply (core plans again
// at apply, from the same prior state) plan a new version from it, so a
// version published by another apply in between makes the apply's plan
// fail with the provider's message instead of planning another version.
const privateReleaseSeen = "release_seen"

type releaseSeen struct {
	Name    string `json:"name"`
	Highest string `json:"highest"`
}

// priorReleaseSeen returns the highest version of name seen, "" if unknown.
func priorReleaseSeen(ctx context.Context, p privateGetter, name string) string {
	var s releaseSeen
	if b := privateValue(ctx, p, privateReleaseSeen); len(b) == 0 || json.Unmarshal(b, &s) != nil || s.Name != name {
		return ""
	}
	return s.Highest
}

func setReleaseSeen(ctx context.Context, p privateSetter, name, highest string) diag.Diagnostics {
	b, _ := json.Marshal(releaseSeen{Name: name, Highest: highest}) // strings always encode
	return p.SetKey(ctx, privateReleaseSeen, b)
}
