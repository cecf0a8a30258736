package release

// Checks of many records at once: the yank entries and moves a reader
// exposes or decides by, and every version a list shows.

import (
	"context"
	"errors"
	"slices"

	goversion "github.com/hashicorp/go-version"
	"golang.org/x/sync/errgroup"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// trustReaders bounds the records checked (or read) at once by one call.
const trustReaders = 8

// signed names a record to check: its key and the sha256 of its stored
// bytes.
type signed struct {
	key string
	sum digest.Sum
}

// checkAll checks every record under t, at most trustReaders at once,
// each once per Trust (Check). It returns nil, or the error of the first
// record, in the order given, that failed; when that is an
// *UntrustedRecordError, a copy of it whose Others names the other
// records refused.
func (t *Trust) checkAll(ctx context.Context, b store.Backend, recs []signed) error {
	if !t.Enabled() || len(recs) == 0 {
		return nil
	}
	errs := make([]error, len(recs))
	var g errgroup.Group
	g.SetLimit(trustReaders)
	for i, r := range recs {
		g.Go(func() error {
			errs[i] = t.Check(ctx, b, r.key, r.sum)
			return nil
		})
	}
	_ = g.Wait() // each check's error is in errs
	var first error
	var others []string
	for _, err := range errs {
		var ue *UntrustedRecordError
		switch {
		case err == nil:
		case first == nil:
			first = err
		case errors.As(err, &ue):
			others = append(others, ue.Key)
		}
	}
	var ue *UntrustedRecordError
	if len(others) > 0 && errors.As(first, &ue) {
		c := *ue // the memoised verdict is shared: not changed here
		c.Others = slices.Compact(others)
		return &c
	}
	return first
}

// CheckYank checks a yank entry read by YankState or Yanks (an entry is
// stored in canonical form, so its bytes are its encoding). A nil entry
// (a version never yanked) passes.
func (t *Trust) CheckYank(ctx context.Context, b store.Backend, y *Yank) error {
	if y == nil {
		return nil
	}
	return t.CheckYanks(ctx, b, []*Yank{y})
}

// CheckYanks checks yank entries, as CheckYank, at most trustReaders at
// once.
func (t *Trust) CheckYanks(ctx context.Context, b store.Backend, ys []*Yank) error {
	recs := make([]signed, 0, len(ys))
	for _, y := range ys {
		if y != nil {
			recs = append(recs, signed{yankKey(y.Name, y.Version, y.Seq), digest.Bytes(y.encode())})
		}
	}
	return t.checkAll(ctx, b, recs)
}

// CheckMoves checks channel moves (History), as CheckMove, at most
// trustReaders at once: a reader that shows a channel's history checks
// every move it shows.
func (t *Trust) CheckMoves(ctx context.Context, b store.Backend, ms []*Move) error {
	recs := make([]signed, len(ms))
	for i, m := range ms {
		recs[i] = signed{moveKey(m.Release, m.Channel, m.Seq), digest.Bytes(m.encode())}
	}
	return t.checkAll(ctx, b, recs)
}

// CheckYanks checks under t the yank entries that decide what the
// selector resolves to when it picks version ("" when it picks none):
// those of the matched versions from version up. A yanked version above
// the pick is skipped by its entry; the pick's own entry lets it be
// picked (an un-yank) or flags it (a pinned yanked version). Below the
// pick nothing is decided. An untrusted entry is refused, not ignored:
// ignoring a yank signed by a revoked key would un-yank the version.
// Needs the yanks (ReadYanks).
func (r *Resolved) CheckYanks(ctx context.Context, b store.Backend, t *Trust, version string) error {
	if !t.Enabled() {
		return nil
	}
	from := 0
	if version != "" {
		from = slices.IndexFunc(r.Matched, func(v *goversion.Version) bool { return v.Original() == version })
		if from < 0 {
			from = 0
		}
	}
	var ys []*Yank
	for _, v := range r.Matched[from:] {
		if y := r.Yanks[v.Original()]; y != nil {
			ys = append(ys, y)
		}
	}
	return t.CheckYanks(ctx, b, ys)
}

// Records reads the record of every matched version, at most
// trustReaders at once, and checks under t each of them and each of
// their yank entries (which a list shows as flags): one list of a
// record's signatures and one read per signature, for each. Records are
// returned in the order of Matched; an error is that of the first version
// whose read or check failed (an *UntrustedRecordError names the others
// refused too).
func (r *Resolved) Records(ctx context.Context, b store.Backend, t *Trust) ([]*Record, error) {
	recs := make([]*Record, len(r.Matched))
	errs := make([]error, len(r.Matched))
	var g errgroup.Group
	g.SetLimit(trustReaders)
	for i, v := range r.Matched {
		g.Go(func() error {
			recs[i], errs[i] = Get(ctx, b, r.Name, v.Original())
			return nil
		})
	}
	_ = g.Wait() // each read's error is in errs
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if !t.Enabled() {
		return recs, nil
	}
	checks := make([]signed, 0, 2*len(recs))
	for _, rec := range recs {
		checks = append(checks, signed{VersionKey(rec.Name, rec.Version), rec.StoredDigest()})
		if y := r.Yanks[rec.Version]; y != nil {
			checks = append(checks, signed{yankKey(y.Name, y.Version, y.Seq), digest.Bytes(y.encode())})
		}
	}
	if err := t.checkAll(ctx, b, checks); err != nil {
		return nil, err
	}
	return recs, nil
}
