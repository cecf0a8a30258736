package actioncache

import (
	"context"
	"fmt"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Mode says who may use the action cache: the provider's build_cache
// setting.
type Mode string

// Cache modes.
const (
	ReadWrite Mode = "read-write" // look up, and record what runs
	ReadOnly  Mode = "read-only"  // look up; never record
	Off       Mode = "off"        // neither
)

// Valid tells whether m is one of the modes above.
func (m Mode) Valid() bool { return m == ReadWrite || m == ReadOnly || m == Off }

// Step is what a plan decided about a step, and how to carry it out.
type Step struct {
	Job Job
	// Planned is the recorded output the plan used (a hit), or nil: run.
	Planned *digest.Sum
	// Check runs the step on a hit too, and fails on another output.
	Check bool
	Mode  Mode
	// Prepare runs just before the command would run (to store local
	// inputs); BeforeRecord just before the record is written (tests).
	Prepare      func(ctx context.Context) error
	BeforeRecord func(ctx context.Context) error
	// Signer, when set, signs the record this run writes (SignWith), with
	// a provenance naming BuilderID ("": DefaultBuilderID) as its builder.
	Signer    *signature.Signer
	BuilderID string
	// Verify, when set, checks a record read from the store before its
	// output is used (the plan's hit, or another run's record found by Put):
	// a trust policy's signature check. Its error is returned as it is.
	Verify func(ctx context.Context, r *Record) error
}

// Realized is a step's output, as the store records it.
type Realized struct {
	Record  *Record
	Listing *digest.Listing // a tree's listing
	Hit     bool            // recorded before: the plan's hit
	// Differs, when set, is another run's output recorded first for the
	// key, which Record now is: the build is not reproducible (a warning).
	Differs *NotReproducibleError
}

// NotReproducibleError is a step whose run gave another output than the
// one recorded for its key.
type NotReproducibleError struct {
	Key, Ours, Recorded digest.Sum
	Raced               bool   // another run recorded it while this one ran
	Diff                string // the paths that differ, when both are trees
}

func (e *NotReproducibleError) Error() string {
	how := "but its key %s is recorded with %s"
	if e.Raced {
		how = "but another run recorded, for the same key %s, %s first"
	}
	return fmt.Sprintf("running the step produced %s, "+how+"%s", e.Ours, e.Key, e.Recorded, e.Diff)
}

// RecordChangedError is a record that names another output than the one
// the plan used.
type RecordChangedError struct {
	Key, Planned, Now digest.Sum
}

func (e *RecordChangedError) Error() string {
	return fmt.Sprintf("the plan used the recorded output %s, but the record of %s now names %s: plan again", e.Planned, e.Key, e.Now)
}

// Realize makes the step's output available: on a hit, the recorded one,
// read again and verified byte for byte (and, with Check, the step run and
// compared); else by running it and, in ReadWrite, recording it once. When
// another run recorded the key first, its output is the one returned —
// with Differs set, or as an error with Check.
func Realize(ctx context.Context, st *store.Store, s Step) (*Realized, error) {
	key := s.Job.Spec.Key()
	if s.Planned != nil {
		rec, man, err := Lookup(ctx, st, key)
		if err != nil {
			return nil, err
		}
		if rec.Output != *s.Planned {
			return nil, &RecordChangedError{Key: key, Planned: *s.Planned, Now: rec.Output}
		}
		if err := s.verify(ctx, rec); err != nil {
			return nil, err
		}
		// The plan checked the record's form and that its output is there;
		// before anyone relies on the output, every byte of it is checked.
		if err := VerifyOutput(ctx, st, rec, man); err != nil {
			return nil, err
		}
		if s.Check {
			res, err := s.run(ctx, st)
			if err != nil {
				return nil, err
			}
			if !sameOutput(&res.Record, rec) {
				return nil, &NotReproducibleError{Key: key, Ours: res.Record.Output, Recorded: rec.Output, Diff: Diff(man, res.Listing)}
			}
		}
		return &Realized{Record: rec, Listing: man, Hit: true}, nil
	}
	res, err := s.run(ctx, st)
	if err != nil {
		return nil, err
	}
	out := &Realized{Record: &res.Record, Listing: res.Listing}
	if s.Mode != ReadWrite {
		return out, nil
	}
	if s.BeforeRecord != nil {
		if err := s.BeforeRecord(ctx); err != nil {
			return nil, err
		}
	}
	// Run stored the output and the log under its leases a moment ago.
	got, gotMan, err := Put(ctx, st, &res.Record, Held(), SignWith(s.Signer, &s.Job.Spec, s.BuilderID))
	if err != nil {
		return nil, err
	}
	if got != &res.Record {
		// Another run's record, found stored: checked like a hit.
		if err := s.verify(ctx, got); err != nil {
			return nil, err
		}
	}
	if !sameOutput(got, &res.Record) {
		differs := &NotReproducibleError{Key: key, Ours: res.Record.Output, Recorded: got.Output, Raced: true, Diff: Diff(gotMan, res.Listing)}
		if s.Check {
			return nil, differs
		}
		out.Differs = differs
	}
	if gotMan == nil && got.Type == TypeTree {
		gotMan = res.Listing // our own record, just written: the listing just stored
	}
	// The record as stored: its log (and, when the outputs differ, its
	// output) is the one everybody gets.
	out.Record, out.Listing = got, gotMan
	return out, nil
}

func (s *Step) run(ctx context.Context, st *store.Store) (*Result, error) {
	if s.Prepare != nil {
		if err := s.Prepare(ctx); err != nil {
			return nil, err
		}
	}
	return Run(ctx, st, s.Job)
}

func (s *Step) verify(ctx context.Context, r *Record) error {
	if s.Verify == nil {
		return nil
	}
	return s.Verify(ctx, r)
}

func sameOutput(a, b *Record) bool { return a.Output == b.Output && a.Type == b.Type }

// shownPaths bounds the paths a Diff names.
const shownPaths = 25

// Diff names the paths in which two outputs differ, when both are trees
// (" (2 paths differ: ~ a, + b)"), else "".
func Diff(a, b *digest.Listing) string {
	if a == nil || b == nil {
		return ""
	}
	lines, total := digest.Diff(a, b, shownPaths)
	if total == 0 {
		return ""
	}
	for i, l := range lines {
		lines[i] = l[:2] + fmt.Sprintf("%q", l[2:])
	}
	what := "paths differ"
	if total == 1 {
		what = "path differs"
	}
	return fmt.Sprintf(" (%d %s: %s)", total, what, strings.Join(lines, ", "))
}
