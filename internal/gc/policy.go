package gc

// The retention policy: which release versions are kept, and why.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

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
	// Every record, history and yank that cannot be trusted is named,
	// not only the first: a user fixes them all before the next run.
	var bad []error
	for k := range c.all {
		switch key, ok := store.ParseKey(k); {
		case key.Family == store.FamilyVersion && !ok:
			bad = append(bad, &UntrustedError{Key: k, Err: errors.New("it is not a release record's key")})
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
		if isBackend(err) {
			return nil, err
		}
		if err != nil {
			bad = append(bad, &UntrustedError{Key: store.MovesPrefix(rc[0], rc[1]), Err: err})
			continue
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
	// Every record, Concurrency() reads at once; used in order below.
	type read struct {
		rec *release.Record
		err error
	}
	var keys [][2]string
	for _, name := range names {
		for _, v := range byName[name] {
			keys = append(keys, [2]string{name, v})
		}
	}
	reads := make([]read, len(keys))
	if err := store.ForEach(ctx, c.st.Concurrency(), len(keys), func(ctx context.Context, i int) error {
		reads[i].rec, reads[i].err = release.Get(ctx, c.b, keys[i][0], keys[i][1])
		if isBackend(reads[i].err) {
			return reads[i].err // the others are not read
		}
		return ctx.Err()
	}); err != nil {
		return nil, err
	}
	records := make(map[[2]string]read, len(keys))
	for i, k := range keys {
		records[k] = reads[i]
	}
	for _, name := range names {
		yanks, err := release.Yanks(ctx, c.b, name)
		if isBackend(err) {
			return nil, err
		}
		if err != nil {
			bad = append(bad, &UntrustedError{Key: store.YanksPrefix(name), Err: err})
			continue
		}
		sorted := versions.Sorted(byName[name])
		if len(sorted) != len(byName[name]) {
			for _, v := range byName[name] {
				if len(versions.Sorted([]string{v})) == 0 { // each that is not a version, named
					bad = append(bad, &UntrustedError{Key: store.VersionsPrefix(name) + v, Err: errors.New("its name is not a version")})
				}
			}
			continue
		}
		// Counted from the highest down: stable versions not yanked (what
		// constraints and the latest resolve to) count for keep-last; a
		// pre-release above every stable version is the next release in
		// the making and is kept until a stable one passes it.
		stable, stableSeen := 0, false
		for i := len(sorted) - 1; i >= 0; i-- {
			v := sorted[i].Original()
			r := records[[2]string{name, v}]
			rec, err := r.rec, r.err
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since it was listed (another collector)
			}
			if err != nil {
				bad = append(bad, &UntrustedError{Key: release.VersionKey(name, v), Err: err})
				continue
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
			case c.all[release.VersionKey(name, v)].modTime().After(c.now.Add(-c.p.Grace)):
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
	if err := untrusted(bad); err != nil {
		return nil, err
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
