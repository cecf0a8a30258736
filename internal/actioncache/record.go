package actioncache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// RecordVersion is the first line of every action record.
const RecordVersion = "immutable-action-v1"

// OutputType is what a step's output is, as its record's "type" line
// says.
type OutputType string

// Output types.
const (
	TypeTree OutputType = "tree" // a directory: Output is its listing's digest
	TypeFile OutputType = "file" // a regular file: Output is its bytes' sha256
	TypeExec OutputType = "exec" // an executable file
)

func (t OutputType) valid() bool { return t == TypeTree || t == TypeFile || t == TypeExec }

// Record is an action record: what running the step of Key produced, once.
// It is written once, after its output and log are stored, so a stored
// record implies both (as a listing implies its blobs).
type Record struct {
	Key      digest.Sum
	Output   digest.Sum
	Type     OutputType
	Size     int64 // bytes of content
	Files    int64 // entries (1 for a file)
	Log      digest.Sum
	Exit     int
	Duration int64 // milliseconds the command ran
}

// Encode is the record's stored form: fixed lines in a fixed order.
func (r *Record) Encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nkey %s\noutput %s\ntype %s\nsize %d\nfiles %d\nlog %s\nexit %d\nduration_ms %d\n",
		RecordVersion, r.Key, r.Output, r.Type, r.Size, r.Files, r.Log, r.Exit, r.Duration)
	return b.Bytes()
}

// maxRecord bounds what is read of a record.
const maxRecord = 4096

// CorruptError is a stored record that cannot be what it claims.
type CorruptError struct {
	Key    string // the store key
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("the build record %s is corrupt: %s. Records are written once; it was altered or damaged behind the store's back: delete it (and nothing else) and the next apply builds the step again", e.Key, e.Reason)
}

// ParseRecord parses a stored record strictly, checking it is the record
// of key.
func ParseRecord(b []byte, key digest.Sum, where string) (*Record, error) {
	bad := func(why string) error { return &CorruptError{Key: where, Reason: why} }
	lines := strings.Split(string(b), "\n")
	want := []string{"", "key", "output", "type", "size", "files", "log", "exit", "duration_ms", ""}
	if len(lines) != len(want) || lines[0] != RecordVersion || lines[len(lines)-1] != "" {
		return nil, bad("not an " + RecordVersion + " record")
	}
	vals := map[string]string{}
	for i, name := range want[1 : len(want)-1] {
		k, v, ok := strings.Cut(lines[i+1], " ")
		if !ok || k != name {
			return nil, bad(fmt.Sprintf("line %d is not %q", i+2, name))
		}
		vals[k] = v
	}
	r := &Record{Type: OutputType(vals["type"])}
	var err error
	for _, f := range []struct {
		name string
		to   *digest.Sum
	}{{"key", &r.Key}, {"output", &r.Output}, {"log", &r.Log}} {
		if *f.to, err = digest.Parse(vals[f.name]); err != nil {
			return nil, bad(f.name + ": " + err.Error())
		}
	}
	for _, f := range []struct {
		name string
		to   *int64
	}{{"size", &r.Size}, {"files", &r.Files}, {"duration_ms", &r.Duration}} {
		if *f.to, err = strconv.ParseInt(vals[f.name], 10, 64); err != nil || *f.to < 0 {
			return nil, bad(f.name + " is not a count")
		}
	}
	exit, err := strconv.Atoi(vals["exit"])
	switch {
	case err != nil || exit != 0:
		return nil, bad("exit status is not 0 (failed builds are never recorded)")
	case !r.Type.valid():
		return nil, bad("unknown output type " + strconv.Quote(string(r.Type)))
	case r.Key != key:
		return nil, bad("it is the record of " + r.Key.String())
	case !bytes.Equal(r.Encode(), b):
		return nil, bad("not in canonical form")
	}
	return r, nil
}

// MissingOutputError is a record whose output or log is not in the store:
// the invariant "a record implies its output" was broken by hand.
type MissingOutputError struct {
	Key    string
	Object digest.Sum
	What   string
	// Unrecorded: found missing by Put, before the record was written (a
	// garbage collection deleted it while the step ran); nothing was
	// recorded.
	Unrecorded bool
}

func (e *MissingOutputError) Error() string {
	if e.Unrecorded {
		return fmt.Sprintf("the %s %s left the store before the build record %s naming it was written (a garbage collection deleted it while the step ran); nothing was recorded: apply again to build and store it", e.What, e.Object, e.Key)
	}
	return fmt.Sprintf("the build record %s names the %s %s, which is not in the store: the store was edited by hand, or something deleted objects records still need. Delete the record (and nothing else) and the next apply builds the step again", e.Key, e.What, e.Object)
}

// Lookup reads and checks the record of key: ErrNotFound when none. A
// record is trusted only as far as it is checked: its form, its key, and
// that the store holds its output (a tree's listing read and verified, a
// file's blob present) and its log.
func Lookup(ctx context.Context, st *store.Store, key digest.Sum) (*Record, *digest.Listing, error) {
	sk := store.ActionKey(key)
	rc, err := st.Backend().Open(ctx, sk)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxRecord+1))
	_ = rc.Close() // read-only: what was read is checked
	if err != nil {
		return nil, nil, err
	}
	where := sk + " in " + st.String()
	if len(b) > maxRecord {
		return nil, nil, &CorruptError{Key: where, Reason: "too large"}
	}
	r, err := ParseRecord(b, key, where)
	if err != nil {
		return nil, nil, err
	}
	var m *digest.Listing
	if r.Type == TypeTree {
		m, err = st.GetListing(ctx, r.Output)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, nil, &MissingOutputError{Key: where, Object: r.Output, What: "output listing"}
		case err != nil:
			return nil, nil, err
		case int64(len(m.Entries)) != r.Files || m.Size() != r.Size:
			return nil, nil, &CorruptError{Key: where, Reason: "its counts do not match the output's listing"}
		}
	} else {
		ok, err := st.HasBlob(ctx, r.Output)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, &MissingOutputError{Key: where, Object: r.Output, What: "output file"}
		}
	}
	ok, err := st.HasBlob(ctx, r.Log)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, &MissingOutputError{Key: where, Object: r.Log, What: "log"}
	}
	return r, m, nil
}

// Put writes r once. When a record of the same key is stored already, it
// is kept and returned (with its listing): the first output recorded is
// the one everybody uses.
//
// A record never names what is not stored: its output and log are held
// against a concurrent garbage collector (store.Hold, here unless the
// caller says it holds them: Held) and found present before it is written
// (a collector may have deleted one while the step ran, before it was
// stored and held).
//
// With SignWith, the record written is signed after the write (see
// SignRecord); a record found already stored is not: this run did not
// produce it. A record written but not signed is a *SignatureError.
func Put(ctx context.Context, st *store.Store, r *Record, opts ...PutOption) (*Record, *digest.Listing, error) {
	var o putOptions
	for _, opt := range opts {
		opt(&o)
	}
	out, what := store.BlobKey(r.Output), "output file"
	if r.Type == TypeTree {
		out, what = store.ListingKey(r.Output), "output listing"
	}
	var lease *store.Lease // nil: nothing to drop
	if !o.held {
		var err error
		if lease, err = st.Hold(ctx, out, store.BlobKey(r.Log)); err != nil {
			return nil, nil, err
		}
	}
	switch k, err := st.FirstMissing(ctx, out, store.BlobKey(r.Log)); {
	case err != nil:
		lease.Drop(ctx)
		return nil, nil, err
	case k == out:
		lease.Drop(ctx)
		return nil, nil, &MissingOutputError{Key: store.ActionKey(r.Key) + " in " + st.String(), Object: r.Output, What: what, Unrecorded: true}
	case k != "":
		lease.Drop(ctx)
		return nil, nil, &MissingOutputError{Key: store.ActionKey(r.Key) + " in " + st.String(), Object: r.Log, What: "log", Unrecorded: true}
	}
	err := st.Backend().Create(ctx, store.ActionKey(r.Key), bytes.NewReader(r.Encode()))
	if errors.Is(err, store.ErrExists) {
		return Lookup(ctx, st, r.Key)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := o.sign(ctx, st, r); err != nil {
		return nil, nil, err
	}
	return r, nil, nil
}

// DamagedOutputError is a record whose output no longer verifies: an
// object it names was altered or damaged in the store.
type DamagedOutputError struct {
	Key string // the record's store key
	Err error
}

func (e *DamagedOutputError) Error() string {
	return fmt.Sprintf("the output of the build record %s does not verify: %v. A stored object was altered or damaged behind the store's back: delete that object (named above) and the record, and the next apply builds the step again and stores its output whole", e.Key, e.Err)
}

func (e *DamagedOutputError) Unwrap() error { return e.Err }

// VerifyOutput reads every byte of a record's output (m: a tree's listing)
// and checks it against its digest, and a file's size against the record.
func VerifyOutput(ctx context.Context, st *store.Store, r *Record, m *digest.Listing) error {
	where := store.ActionKey(r.Key) + " in " + st.String()
	if r.Type == TypeTree {
		if err := st.VerifyTree(ctx, r.Output, m); err != nil {
			return &DamagedOutputError{Key: where, Err: err}
		}
		return nil
	}
	size, err := st.VerifyBlob(ctx, r.Output)
	switch {
	case err != nil:
		return &DamagedOutputError{Key: where, Err: err}
	case size != r.Size:
		return &CorruptError{Key: where, Reason: fmt.Sprintf("it gives the output's size as %d bytes; the output has %d", r.Size, size)}
	}
	return nil
}

// Untrusted reports whether err says a key's record cannot be trusted:
// the record corrupt, or the output it names gone or damaged in the store
// (not an output collected while its step ran, which nothing recorded).
func Untrusted(err error) bool {
	var corrupt *CorruptError
	var missing *MissingOutputError
	var damaged *DamagedOutputError
	return errors.As(err, &corrupt) || (errors.As(err, &missing) && !missing.Unrecorded) || errors.As(err, &damaged)
}
