package release

import (
	"context"
	"errors"

	goversion "github.com/hashicorp/go-version"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// Plan is the version a release will have.
type Plan struct {
	Version         string
	PreviousVersion string  // "" when there is none
	Adopted         *Record // the published record with the same content, if the plan adopts one
}

// PlanVersion decides the version of content under b, reading only: an
// explicit version if given (a *ConflictError if it is published with other
// content); else the highest version already published with the same
// content (adoption); else the highest published version bumped by bump
// (versions.First when there is none). A new version whose record would
// exceed MaxRecordSize is a *TooLargeError. It reads no clock: planning
// twice against the same store gives the same answer.
func PlanVersion(ctx context.Context, b store.Backend, c Content, explicit, bump string) (*Plan, error) {
	published, err := List(ctx, b, c.Name)
	if err != nil {
		return nil, err
	}
	want := c.Digest().String()

	adopt := func(v *goversion.Version) (*Plan, error) {
		rec, err := Get(ctx, b, c.Name, v.Original())
		if err != nil {
			return nil, err
		}
		if rec.Digest != want {
			return nil, &ConflictError{Existing: rec}
		}
		return &Plan{Version: rec.Version, PreviousVersion: rec.PreviousVersion, Adopted: rec}, nil
	}

	if explicit != "" {
		v, err := versions.Parse(explicit)
		if err != nil {
			return nil, err
		}
		for _, p := range published {
			if p.Equal(v) {
				return adopt(p)
			}
		}
		return checked(c, &Plan{Version: explicit, PreviousVersion: original(versions.Below(published, v))})
	}

	same, err := FindByDigest(ctx, b, c.Name, c.Digest())
	if err != nil {
		return nil, err
	}
	for i := len(same) - 1; i >= 0; i-- {
		p, err := adopt(same[i])
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			var conflict *ConflictError
			if !errors.As(err, &conflict) { // a stale index entry is skipped
				return nil, err
			}
		}
	}

	if len(published) == 0 {
		return checked(c, &Plan{Version: versions.First})
	}
	highest := published[len(published)-1]
	next, err := versions.Bump(highest, bump)
	if err != nil {
		return nil, err
	}
	return checked(c, &Plan{Version: next, PreviousVersion: highest.Original()})
}

// checked returns p, a new version of c, if its record can be published.
func checked(c Content, p *Plan) (*Plan, error) {
	if err := CheckSize(c, p.Version, p.PreviousVersion); err != nil {
		return nil, err
	}
	return p, nil
}

func original(v *goversion.Version) string {
	if v == nil {
		return ""
	}
	return v.Original()
}
