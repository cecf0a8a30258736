package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// YankSpec names the encoding of yank entries.
const YankSpec = "immutable-yank-v1"

// A version is yanked, and un-yanked, by write-once entries:
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

// MaxReason bounds a yank's reason.
const MaxReason = 1024

func yanksPrefix(name string) string { return "releases/" + name + "/yanks/" }

func yankKey(name, version string, seq int) string {
	return fmt.Sprintf("%s%s/%010d", yanksPrefix(name), version, seq)
}

func (y *Yank) encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(y) // a struct of strings, ints and a bool: cannot fail
	return b.Bytes()
}

// getYank reads and checks one entry.
func getYank(ctx context.Context, b store.Backend, key, name, version string, seq int) (*Yank, error) {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	raw, err := io.ReadAll(io.LimitReader(rc, 4*MaxReason))
	if err != nil {
		return nil, err
	}
	var y Yank
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&y); err != nil {
		return nil, &TamperedError{Key: key, Detail: "it is not a valid yank entry: " + err.Error()}
	}
	switch {
	case y.Spec != YankSpec:
		return nil, &TamperedError{Key: key, Detail: fmt.Sprintf("unknown spec %q", y.Spec)}
	case y.Name != name || y.Version != version || y.Seq != seq:
		return nil, &TamperedError{Key: key, Detail: fmt.Sprintf("it is the entry %d of %s@%s", y.Seq, y.Name, y.Version)}
	case !bytes.Equal(y.encode(), raw):
		return nil, &TamperedError{Key: key, Detail: "it is not in canonical form"}
	}
	return &y, nil
}

// Yanks returns the state of every version of a release that has yank
// entries: its last entry (yanked or un-yanked). One List, and one read
// per such version.
func Yanks(ctx context.Context, b store.Backend, name string) (map[string]*Yank, error) {
	keys, err := b.List(ctx, yanksPrefix(name))
	if err != nil {
		return nil, err
	}
	last := map[string]int{}
	for _, k := range keys {
		version, seqText, ok := strings.Cut(strings.TrimPrefix(k, yanksPrefix(name)), "/")
		seq, err := strconv.Atoi(seqText)
		if !ok || err != nil || seq <= 0 || k != yankKey(name, version, seq) {
			return nil, &TamperedError{Key: k, Detail: "it is not a yank entry's key"}
		}
		last[version] = max(last[version], seq)
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
	keys, err := b.List(ctx, yanksPrefix(name)+version+"/")
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	k := keys[len(keys)-1] // sorted, zero-padded: the last is the highest
	seq, err := strconv.Atoi(strings.TrimPrefix(k, yanksPrefix(name)+version+"/"))
	if err != nil || k != yankKey(name, version, seq) {
		return nil, &TamperedError{Key: k, Detail: "it is not a yank entry's key"}
	}
	return getYank(ctx, b, k, name, version, seq)
}

// NotPublishedError is a yank of a version that was never published.
type NotPublishedError struct{ Name, Version string }

func (e *NotPublishedError) Error() string {
	return fmt.Sprintf("%s@%s is not published: only a published version can be yanked", e.Name, e.Version)
}

// SetYank records that a published version is yanked (or, with yanked
// false, un-yanked), with a reason, as a new entry after the last one. A
// version already in that state with that reason gets no new entry; its
// last is returned.
// Two writers racing for the same entry: one wins, the other reads the
// new state and tries again.
func SetYank(ctx context.Context, b store.Backend, name, version string, yanked bool, reason string, now time.Time) (*Yank, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(reason) > MaxReason {
		return nil, fmt.Errorf("the reason is %d bytes long; at most %d are allowed", len(reason), MaxReason)
	}
	if _, err := Get(ctx, b, name, version); errors.Is(err, store.ErrNotFound) {
		return nil, &NotPublishedError{Name: name, Version: version}
	} else if err != nil {
		return nil, err
	}
	for range 10 {
		cur, err := YankState(ctx, b, name, version)
		if err != nil {
			return nil, err
		}
		seq := 1
		if cur != nil {
			if cur.Yanked == yanked && cur.Reason == reason {
				return cur, nil
			}
			seq = cur.Seq + 1
		}
		y := &Yank{Spec: YankSpec, Name: name, Version: version, Seq: seq, Yanked: yanked, Reason: reason, At: now.UTC().Format(time.RFC3339)}
		switch err := b.Create(ctx, yankKey(name, version, seq), bytes.NewReader(y.encode())); {
		case err == nil:
			return y, nil
		case !errors.Is(err, store.ErrExists):
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s@%s: the yank state kept changing under concurrent writers; try again", name, version)
}
