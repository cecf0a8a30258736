package release

import (
	"context"
	"errors"
	"fmt"

	goversion "github.com/hashicorp/go-version"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
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
		if err := checkNotCollected(ctx, b, c.Name, explicit); err != nil {
			return nil, err
		}
		return checked(c, &Plan{Version: explicit, PreviousVersion: original(versions.Below(published, v))})
	}

	same, err := FindByDigest(ctx, b, c.Name, c.Digest())
	if err != nil {
		return nil, err
	}
	var yanked *YankedContentError
	for i := len(same) - 1; i >= 0; i-- {
		p, err := adopt(same[i])
		if err == nil {
			// A yanked version is not adopted by content: whoever uses the
			// release's version would deploy what was marked broken.
			y, yerr := YankState(ctx, b, c.Name, p.Version)
			if yerr != nil {
				return nil, yerr
			}
			if y != nil && y.Yanked {
				if yanked == nil {
					yanked = &YankedContentError{Name: c.Name, Version: p.Version, Yank: y}
				}
				continue
			}
			return p, nil
		}
		if errors.Is(err, store.ErrNotFound) {
			// No record: a publish interrupted before it, or a version
			// deleted by retention (package gc), which keeps the index
			// entry and the yank history: content that was yanked is not
			// brought back under a new number either.
			y, yerr := YankState(ctx, b, c.Name, same[i].Original())
			if yerr != nil {
				return nil, yerr
			}
			if y != nil && y.Yanked && yanked == nil {
				yanked = &YankedContentError{Name: c.Name, Version: same[i].Original(), Yank: y, Collected: true}
			}
			continue
		}
		var conflict *ConflictError
		if !errors.As(err, &conflict) { // a stale index entry is skipped
			return nil, err
		}
	}

	if yanked != nil {
		return nil, yanked
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

// YankedContentError is content equal to a yanked version's, with no
// version given: adopting it would quietly bring the broken version back.
type YankedContentError struct {
	Name, Version string
	Yank          *Yank
	Collected     bool // the version was deleted by retention since
}

func (e *YankedContentError) Error() string {
	if e.Collected {
		return fmt.Sprintf("this content is that of %s@%s, which was yanked (%s: %s) and later deleted by the store's retention: change the content, or set version to a new version to publish it anyway", e.Name, e.Version, e.Yank.At, usertext.Show(e.Yank.Reason))
	}
	return fmt.Sprintf("this content is that of %s@%s, which is yanked (%s: %s): change the content, un-yank the version, or set version = %q to publish it under that version anyway", e.Name, e.Version, e.Yank.At, usertext.Show(e.Yank.Reason), e.Version)
}

// PlanVersionSince is PlanVersion for a plan made from a state that saw
// seen as the highest published version of c.Name ("" for none seen: plain
// PlanVersion). Without an explicit version, a store whose highest version
// is another one now (published by another apply since, or deleted) is a
// *VersionsMovedError: the version planned from seen and the one planned from the
// store now would differ, and Terraform plans twice (at plan, and again at
// apply), so both plans must see the same answer or refuse.
func PlanVersionSince(ctx context.Context, b store.Backend, c Content, explicit, bump, seen string) (*Plan, error) {
	if explicit == "" && seen != "" {
		highest, err := Highest(ctx, b, c.Name)
		if err != nil {
			return nil, err
		}
		if highest != seen {
			e := &VersionsMovedError{Name: c.Name, Seen: seen, Highest: highest, Deleted: highest == ""}
			if h, err := versions.Parse(highest); err == nil {
				if s, err := versions.Parse(seen); err == nil && h.LessThan(s) {
					e.Deleted = true
				}
			}
			return nil, e
		}
	}
	return PlanVersion(ctx, b, c, explicit, bump)
}

// Highest returns the highest published version of a release, "" for none.
func Highest(ctx context.Context, b store.Backend, name string) (string, error) {
	published, err := List(ctx, b, name)
	if err != nil || len(published) == 0 {
		return "", err
	}
	return published[len(published)-1].Original(), nil
}

// VersionsMovedError is a release whose highest published version changed since a
// state saw it.
type VersionsMovedError struct {
	Name, Seen, Highest string // Highest "" when none is published now
	Deleted             bool   // Highest is below Seen: versions were deleted
}

func (e *VersionsMovedError) Error() string {
	if e.Highest == "" {
		return fmt.Sprintf("release %q had version %s when the state last read the store, and has no version now", e.Name, e.Seen)
	}
	return fmt.Sprintf("the highest version of release %q was %s when the state last read the store, and is %s now", e.Name, e.Seen, e.Highest)
}
