package release

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goversion "github.com/hashicorp/go-version"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// Resolved is what a selector picks of a release's published versions,
// with their yank states: the one reading of versions every reader (the
// data sources) shares.
type Resolved struct {
	Name     string
	Selector string
	// All are the published versions, ascending.
	All []*goversion.Version
	// Matched are the versions the selector picks, ascending, yanked ones
	// included.
	Matched []*goversion.Version
	// Yanks are the yank states of the versions that have any (Yanks).
	Yanks map[string]*Yank
}

// ListError is a failure to list a release's published versions.
type ListError struct {
	Name string
	Err  error
}

func (e *ListError) Error() string { return e.Err.Error() }

func (e *ListError) Unwrap() error { return e.Err }

// ConstraintError is a selector that is neither a version nor a valid
// constraint. Its text is the parser's.
type ConstraintError struct {
	Selector string
	Err      error
}

func (e *ConstraintError) Error() string { return e.Err.Error() }

func (e *ConstraintError) Unwrap() error { return e.Err }

// Resolve lists the published versions of a release, selects those that
// selector picks, and reads their yank states. A selector is an exact
// version ("1.4.2", or "= 1.4.2": that one, pre-release or not), a
// constraint ("~> 1.4"), or "" for every version; pre-releases otherwise
// match only with includePre or as versions.Select says. A release with no
// published versions is no error here (All is empty). Errors: *ListError
// (the listing failed), *ConstraintError, or the error of Yanks.
func Resolve(ctx context.Context, b store.Backend, name, selector string, includePre bool) (*Resolved, error) {
	r, err := Select(ctx, b, name, selector, includePre)
	if err != nil {
		return nil, err
	}
	if err := r.ReadYanks(ctx, b); err != nil {
		return nil, err
	}
	return r, nil
}

// Select is Resolve without the yank states (Yanks stays nil until
// ReadYanks): for a reader that needs them only sometimes, such as a diff
// whose `to` is given, so that it pays no listing of the yanks.
func Select(ctx context.Context, b store.Backend, name, selector string, includePre bool) (*Resolved, error) {
	all, err := List(ctx, b, name)
	if err != nil {
		return nil, &ListError{Name: name, Err: err}
	}
	matched, err := match(all, selector, includePre)
	if err != nil {
		return nil, &ConstraintError{Selector: selector, Err: err}
	}
	return &Resolved{Name: name, Selector: selector, All: all, Matched: matched}, nil
}

// ReadYanks reads the yank states of the release's versions into r.Yanks.
func (r *Resolved) ReadYanks(ctx context.Context, b store.Backend) error {
	yanks, err := Yanks(ctx, b, r.Name)
	if err != nil {
		return err
	}
	r.Yanks = yanks
	return nil
}

// Yanked returns a version's last yank entry and whether it yanks it.
func (r *Resolved) Yanked(version string) (*Yank, bool) {
	y := r.Yanks[version]
	return y, y != nil && y.Yanked
}

// Unyanked are the matched versions that are not yanked, ascending.
func (r *Resolved) Unyanked() []*goversion.Version {
	var out []*goversion.Version
	for _, v := range r.Matched {
		if _, y := r.Yanked(v.Original()); !y {
			out = append(out, v)
		}
	}
	return out
}

// Latest is the highest matched version that is not yanked, or nil.
func (r *Resolved) Latest() *goversion.Version {
	if u := r.Unyanked(); len(u) > 0 {
		return u[len(u)-1]
	}
	return nil
}

// Find returns the published version equal to want, pre-release or not,
// or nil (also when want is not a version).
func (r *Resolved) Find(want string) *goversion.Version {
	if _, err := versions.Parse(want); err != nil {
		return nil
	}
	if m, _ := match(r.All, want, true); len(m) == 1 {
		return m[0]
	}
	return nil
}

// NoVersionsError is a release with no published versions.
type NoVersionsError struct{ Name string }

func (e *NoVersionsError) Error() string {
	return fmt.Sprintf("release %q has no published versions", e.Name)
}

// NoMatchError is a selector that picks no version that may be used.
type NoMatchError struct {
	Name, Selector string
	// Skipped counts the matching versions that are yanked.
	Skipped int
	// Collected is the version the selector pins, when it was published
	// and later deleted by retention; "" otherwise.
	Collected string
	// All are the published versions, ascending.
	All []*goversion.Version
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("release %q has no version matching %q that may be used", e.Name, e.Selector)
}

// Pick returns the one version the selector resolves to: the highest
// matched that is not yanked, or the exact version it names, yanked or
// not (a pinned version resolves; its yank is the caller's to report). A
// release with no versions is a *NoVersionsError; no such version a
// *NoMatchError, which reads the store once more to tell a pinned version
// deleted by retention.
func (r *Resolved) Pick(ctx context.Context, b store.Backend) (string, error) {
	usable := r.Matched
	if _, exact := exactSelector(r.Selector); !exact {
		usable = r.Unyanked()
	}
	if len(r.All) == 0 {
		return "", &NoVersionsError{Name: r.Name}
	}
	if len(usable) > 0 {
		return usable[len(usable)-1].Original(), nil
	}
	e := &NoMatchError{Name: r.Name, Selector: r.Selector, Skipped: len(r.Matched) - len(usable), All: r.All}
	if v, exact := exactSelector(r.Selector); exact { // one version, not a constraint
		pin := v.Original()
		var np *NotPublishedError
		if errors.As(NotPublished(ctx, b, r.Name, pin), &np) && np.Collected {
			e.Collected = pin
		}
	}
	return "", e
}

// exactSelector reports whether a selector names one version: "1.4.2",
// or the constraint "= 1.4.2" that Terraform users write for it.
func exactSelector(selector string) (*goversion.Version, bool) {
	sel := strings.TrimSpace(selector)
	if rest, ok := strings.CutPrefix(sel, "="); ok && !strings.ContainsAny(rest, "<>~=!,") {
		sel = strings.TrimSpace(rest)
	}
	if sel == "" {
		return nil, false
	}
	v, err := versions.Parse(sel)
	return v, err == nil
}

// match returns, ascending, the versions of all that a selector picks: an
// exact version (that one, pre-release or not), a constraint, or "" for
// all; pre-releases otherwise as versions.Select says.
func match(all []*goversion.Version, selector string, includePre bool) ([]*goversion.Version, error) {
	if selector == "" {
		return versions.Select(all, nil, includePre), nil
	}
	if exact, ok := exactSelector(selector); ok {
		for _, v := range all {
			if v.Equal(exact) {
				return []*goversion.Version{v}, nil
			}
		}
		return nil, nil
	}
	c, err := versions.Constraint(selector)
	if err != nil {
		return nil, err
	}
	return versions.Select(all, c, includePre), nil
}
