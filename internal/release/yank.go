package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// YankSpec names the encoding of yank entries.
const YankSpec = "immutable-yank-v1"

// A version is yanked, and un-yanked, by write-once entries (store.YankKey):
//
//	releases/<name>/yanks/<version>/<seq>   seq 0000000001, 0000000002, …
//
// The last entry says the version's state; earlier ones are its history,
// never rewritten. Un-yanking is a new entry, not a deletion.

// Yank is one entry.
type Yank struct {
	Spec    string `json:"spec"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Seq     int    `json:"seq"`
	Yanked  bool   `json:"yanked"`
	Reason  string `json:"reason"`
	At      string `json:"at"` // RFC 3339, UTC
}

// MaxReason bounds a yank's (or a channel move's) reason, in bytes.
const MaxReason = 1024

// maxEntry bounds what is read of a yank entry or a channel move: a reason
// at its limit, every byte escaped (\u00XX), and the other fields.
const maxEntry = 6*MaxReason + 1024

// maxSeq is the highest entry number (ten digits). It is an int64: an
// int is 32 bits on 386 and arm, which the provider is released for.
const maxSeq int64 = 9999999999

// CheckReason refuses a reason over MaxReason bytes or holding a
// character that does not show as itself (usertext.Check): reasons are
// printed in other people's terminals. Every writer checks it.
func CheckReason(reason string) error {
	if len(reason) > MaxReason {
		return fmt.Errorf("the reason is %d bytes long; at most %d are allowed", len(reason), MaxReason)
	}
	return usertext.Check("the reason", reason)
}

// storedReason tells a reason some version of the provider may have
// written: at most MaxReason bytes, without a control character. Earlier
// versions accepted format characters (U+202E), so an entry holding one
// is not a forgery; it is shown escaped (usertext.Show), never raw.
func storedReason(reason string) bool {
	return len(reason) <= MaxReason && !strings.ContainsFunc(reason, unicode.IsControl)
}

// entryKey reads the key of a history entry of family f (a yank entry or
// a channel move), as written: ten digits, 1 to maxSeq.
func entryKey(key string, f store.Family) (store.Key, bool) {
	k, ok := store.ParseKey(key)
	return k, ok && k.Family == f && k.Seq >= 1 && int64(k.Seq) <= maxSeq
}

// yankKey is where a version's yank entry seq lives.
func yankKey(name, version string, seq int) string { return store.YankKey(name, version, seq) }

func (y *Yank) encode() []byte { return encodeEntry(y) }

func (y *Yank) common() (spec, reason, at string) { return y.Spec, y.Reason, y.At }

// historyEntry is a yank entry or a channel move: small, write-once JSON.
type historyEntry interface {
	encode() []byte
	common() (spec, reason, at string)
}

// encodeEntry is an entry's stored form: compact JSON, fields in order,
// no HTML escaping.
func encodeEntry(e historyEntry) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(e) // strings, ints and a bool: cannot fail
	return b.Bytes()
}

// readEntry reads the entry at key into e and checks what every entry
// must be: bounded, only known fields, in canonical form, of spec, with a
// printable reason and an RFC 3339 time. what names it in errors.
func readEntry(ctx context.Context, b store.Backend, key, what, spec string, e historyEntry) error {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	raw, err := io.ReadAll(io.LimitReader(rc, maxEntry+1))
	if err != nil {
		return err
	}
	if len(raw) > maxEntry {
		return &TamperedError{Key: key, Detail: "it is larger than any " + what + " the provider writes"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return &TamperedError{Key: key, Detail: "it is not a valid " + what + ": " + err.Error()}
	}
	gotSpec, reason, at := e.common()
	switch {
	case gotSpec != spec:
		return &TamperedError{Key: key, Detail: fmt.Sprintf("unknown spec %q", gotSpec)}
	case !bytes.Equal(e.encode(), raw):
		return &TamperedError{Key: key, Detail: "it is not in canonical form"}
	case !storedReason(reason):
		return &TamperedError{Key: key, Detail: "its reason is not one the provider writes"}
	}
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		return &TamperedError{Key: key, Detail: "its time is not RFC 3339"}
	}
	return nil
}

// getYank reads and checks one entry.
func getYank(ctx context.Context, b store.Backend, key, name, version string, seq int) (*Yank, error) {
	var y Yank
	if err := readEntry(ctx, b, key, "yank entry", YankSpec, &y); err != nil {
		return nil, err
	}
	if y.Name != name || y.Version != version || y.Seq != seq {
		return nil, &TamperedError{Key: key, Detail: fmt.Sprintf("it is the entry %d of %s@%s", y.Seq, y.Name, y.Version)}
	}
	return &y, nil
}

// Yanks returns the state of every version of a release that has yank
// entries: its last entry (yanked or un-yanked). One List, and one read
// per such version.
func Yanks(ctx context.Context, b store.Backend, name string) (map[string]*Yank, error) {
	keys, err := b.List(ctx, store.YanksPrefix(name))
	if err != nil {
		return nil, err
	}
	last := map[string]int{}
	for _, k := range keys {
		e, ok := entryKey(k, store.FamilyYank)
		if !ok {
			return nil, &TamperedError{Key: k, Detail: "it is not a yank entry's key"}
		}
		last[e.Version] = max(last[e.Version], e.Seq)
	}
	out := map[string]*Yank{}
	for version, seq := range last {
		y, err := getYank(ctx, b, yankKey(name, version, seq), name, version, seq)
		if err != nil {
			return nil, err
		}
		out[version] = y
	}
	return out, nil
}

// YankState returns the last entry of one version, or nil when it has
// none (never yanked).
func YankState(ctx context.Context, b store.Backend, name, version string) (*Yank, error) {
	keys, err := b.List(ctx, store.YankPrefix(name, version))
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	last := 0
	for _, k := range keys {
		e, ok := entryKey(k, store.FamilyYank)
		if !ok {
			return nil, &TamperedError{Key: k, Detail: "it is not a yank entry's key"}
		}
		last = max(last, e.Seq)
	}
	return getYank(ctx, b, yankKey(name, version, last), name, version, last)
}

// NotPublishedError is a version that is not published: never, or no
// longer (Collected: deleted by retention, package gc).
type NotPublishedError struct {
	Name, Version string
	Collected     bool
}

func (e *NotPublishedError) Error() string {
	if e.Collected {
		return fmt.Sprintf("%s@%s is not published any more: the store's retention (garbage collection) deleted it", e.Name, e.Version)
	}
	return fmt.Sprintf("%s@%s is not published", e.Name, e.Version)
}

// NotPublished returns the *NotPublishedError of a version with no record,
// saying whether retention deleted it.
func NotPublished(ctx context.Context, b store.Backend, name, version string) error {
	ok, err := b.Exists(ctx, CollectedKey(name, version))
	if err != nil {
		return err
	}
	return &NotPublishedError{Name: name, Version: version, Collected: ok}
}

// AnySeq, as SetYank's expect, writes whatever the last entry is.
const AnySeq = -1

// SetYank records that a published version is yanked (or, with yanked
// false, un-yanked), with a reason, as a new entry after the last one.
// With AnySeq, a version already in that state with that reason gets no
// new entry; its last is returned. With expect >= 0, the entry is written
// only if the last one is entry expect (0: none) — even in the same state —
// otherwise a *YankMovedError, and nothing is written. Writers racing for the same entry: one wins, the others read
// the new state and try again (each loss is another writer's progress).
// With SignWith, the entry written is signed; a failure to sign is a
// *SignatureError. An entry found in that state (AnySeq) is signed as
// what this call would have written but for its time, if that time is
// recent (signFound); otherwise a *ForeignRecordError.
func SetYank(ctx context.Context, b store.Backend, name, version string, yanked bool, reason string, expect int, now time.Time, opts ...Option) (*Yank, error) {
	o := collect(opts)
	y, found, err := setYank(ctx, b, name, version, yanked, reason, expect, now)
	if err != nil {
		return nil, err
	}
	key := yankKey(name, version, y.Seq)
	if !found {
		err = o.sign(ctx, b, key, y.encode(), KindYank, nil)
	} else {
		err = o.signFound(ctx, b, key, y.encode(), KindYank, nil, recent("at", y.At, now)) // found only with AnySeq
	}
	if err != nil {
		return nil, err
	}
	return y, nil
}

// setYank writes the entry, or finds the version in that state already
// (found).
func setYank(ctx context.Context, b store.Backend, name, version string, yanked bool, reason string, expect int, now time.Time) (y *Yank, found bool, err error) {
	if err := CheckName(name); err != nil {
		return nil, false, err
	}
	if err := CheckReason(reason); err != nil {
		return nil, false, err
	}
	if _, err := Get(ctx, b, name, version); errors.Is(err, store.ErrNotFound) {
		return nil, false, NotPublished(ctx, b, name, version)
	} else if err != nil {
		return nil, false, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		cur, err := YankState(ctx, b, name, version)
		if err != nil {
			return nil, false, err
		}
		seq := 1
		if cur != nil {
			seq = cur.Seq + 1
		}
		if expect >= 0 && seq-1 != expect {
			return nil, false, &YankMovedError{Name: name, Version: version, Now: cur}
		}
		// With expect, the caller saw entry expect and asks for the entry
		// after it, even in the same state: it holds no more of entry
		// expect than its number (an untrusted entry imported by position),
		// and the new one is signed.
		if expect < 0 && cur != nil && cur.Yanked == yanked && cur.Reason == reason {
			return cur, true, nil
		}
		if int64(seq) > maxSeq {
			return nil, false, fmt.Errorf("%s@%s has %d yank entries, the most there can be", name, version, maxSeq)
		}
		y = &Yank{Spec: YankSpec, Name: name, Version: version, Seq: seq, Yanked: yanked, Reason: reason, At: now.UTC().Format(time.RFC3339)}
		switch err := b.Create(ctx, yankKey(name, version, seq), bytes.NewReader(y.encode())); {
		case err == nil:
			return y, false, nil
		case !errors.Is(err, store.ErrExists):
			return nil, false, err
		}
	}
}

// YankMovedError is a yank entry written by someone else since the one
// expected.
type YankMovedError struct {
	Name, Version string
	Now           *Yank // nil when there is none
}

func (e *YankMovedError) Error() string {
	if e.Now == nil {
		return fmt.Sprintf("%s@%s has no yank entries any more", e.Name, e.Version)
	}
	state := "un-yanked"
	if e.Now.Yanked {
		state = "yanked"
	}
	return fmt.Sprintf("%s@%s was %s by someone else since (entry %d, %s: %s)", e.Name, e.Version, state, e.Now.Seq, e.Now.At, usertext.Show(e.Now.Reason))
}
