package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// ChannelSpec names the encoding of channel moves.
const ChannelSpec = "immutable-channel-v1"

// A channel (prod, staging) points a release at one published version.
// Every move is a write-once entry (store.MoveKey):
//
//	channels/<release>/<channel>/moves/<seq>   seq 0000000001, 0000000002, …
//
// The last entry is where the channel points; the earlier ones are its
// history, never rewritten, so a rollback is a move back. Entry n+1 is
// written only if absent: of two moves from the same position, exactly one
// is written.

// Move is one entry.
type Move struct {
	Spec    string `json:"spec"`
	Release string `json:"release"`
	Channel string `json:"channel"`
	Seq     int    `json:"seq"`
	From    string `json:"from"` // "" for the first
	To      string `json:"to"`
	Reason  string `json:"reason"`
	At      string `json:"at"`
}

var channelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// CheckChannel validates a channel name as release names are.
func CheckChannel(name string) error {
	if len(name) > MaxNameLength || !channelRe.MatchString(name) {
		return fmt.Errorf("%q is not a valid channel name: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (such as \"prod\")", name)
	}
	return nil
}

// moveKey is where a channel's move seq lives.
func moveKey(rel, channel string, seq int) string { return store.MoveKey(rel, channel, seq) }

func (m *Move) encode() []byte { return encodeEntry(m) }

func (m *Move) common() (spec, reason, at string) { return m.Spec, m.Reason, m.At }

func getMove(ctx context.Context, b store.Backend, rel, channel string, seq int) (*Move, error) {
	key := moveKey(rel, channel, seq)
	var m Move
	if err := readEntry(ctx, b, key, "channel move", ChannelSpec, &m); err != nil {
		return nil, err
	}
	if m.Release != rel || m.Channel != channel || m.Seq != seq {
		return nil, &TamperedError{Key: key, Detail: fmt.Sprintf("it is move %d of %s/%s", m.Seq, m.Release, m.Channel)}
	}
	return &m, nil
}

// seqs lists the entry numbers of a channel, ascending, checking each key.
func seqs(ctx context.Context, b store.Backend, rel, channel string) ([]int, error) {
	keys, err := b.List(ctx, store.MovesPrefix(rel, channel))
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(keys))
	for _, k := range keys {
		e, ok := entryKey(k, store.FamilyMove)
		if !ok {
			return nil, &TamperedError{Key: k, Detail: "it is not a channel move's key"}
		}
		out = append(out, e.Seq)
	}
	sort.Ints(out)
	for i, n := range out {
		if n != i+1 {
			// Entries are never deleted: a gap is a hand edit.
			return nil, &TamperedError{Key: moveKey(rel, channel, i+1), Detail: "it is missing, though later moves exist: a channel's history is never deleted"}
		}
	}
	return out, nil
}

// Current returns a channel's last move, or nil when it has none.
func Current(ctx context.Context, b store.Backend, rel, channel string) (*Move, error) {
	ns, err := seqs(ctx, b, rel, channel)
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	hist, err := History(ctx, b, rel, channel, 2)
	if err != nil {
		return nil, err
	}
	return hist[len(hist)-1], nil
}

// History returns a channel's last n moves (all when n <= 0), oldest first.
func History(ctx context.Context, b store.Backend, rel, channel string, n int) ([]*Move, error) {
	ns, err := seqs(ctx, b, rel, channel)
	if err != nil {
		return nil, err
	}
	if n > 0 && len(ns) > n {
		ns = ns[len(ns)-n:]
	}
	out := make([]*Move, 0, len(ns))
	for _, s := range ns {
		m, err := getMove(ctx, b, rel, channel, s)
		if err != nil {
			return nil, err
		}
		// Each move starts where the one before it ended.
		if len(out) > 0 && m.From != out[len(out)-1].To || s == 1 && m.From != "" {
			return nil, &TamperedError{Key: moveKey(rel, channel, s), Detail: "it starts from " + strconvQuote(m.From) + ", not where the move before it ended"}
		}
		out = append(out, m)
	}
	return out, nil
}

// MovedError is a move planned from a position the channel has left, or
// (Reason set) a move found where this one would go, from and to the same
// versions but with another reason: someone else's move, not this one.
type MovedError struct {
	Release, Channel string
	Now              *Move
	// Reason is the reason of the move refused, when the move found goes
	// where it would (Foreign).
	Reason  string
	Foreign bool
}

func (e *MovedError) Error() string {
	if e.Foreign {
		return fmt.Sprintf("the channel %s of %s was moved to %s by someone else (move %d, %s): that move goes from and to where this one "+
			"would, but its reason is %s, not this move's %s, so it is not this move and was neither adopted nor signed; nothing was "+
			"written: check who wrote it, then plan again", e.Channel, e.Release, usertext.Show(e.Now.To), e.Now.Seq, usertext.Show(e.Now.At),
			usertext.Quote(e.Now.Reason), usertext.Quote(e.Reason))
	}
	return fmt.Sprintf("the channel %s of %s was moved by another apply to %s (move %d, %s) since this plan was made; nothing was written: plan again", e.Channel, e.Release, usertext.Show(e.Now.To), e.Now.Seq, usertext.Show(e.Now.At))
}

// GateError is a move refused by a channel's gate.
type GateError struct {
	Release, Version, Gate string
	Seen                   []string // versions the gate channel had, newest first (bounded)
}

func (e *GateError) Error() string {
	seen := "it has never pointed anywhere"
	if len(e.Seen) > 0 {
		shown := make([]string, len(e.Seen))
		for i, v := range e.Seen {
			shown[i] = usertext.Show(v) // read from the gate's moves
		}
		seen = "it had " + strings.Join(shown, ", ")
	}
	return fmt.Sprintf("%s@%s was never on the channel %s, which this channel requires first (%s). Promote it to %s first", e.Release, e.Version, e.Gate, seen, e.Gate)
}

// YankedError is a move to a yanked version.
type YankedError struct {
	Release, Version string
	Yank             *Yank
}

func (e *YankedError) Error() string {
	return fmt.Sprintf("%s@%s is yanked (%s: %s): a channel does not move to a yanked version", e.Release, e.Version, e.Yank.At, usertext.Show(e.Yank.Reason))
}

// CheckMove checks that a channel may point at version: published, not
// yanked, and, for each gate, once on that channel. With a trust policy
// (at most one; nil or disabled: none), a gate's move counts only if the
// policy trusts it and it approved the record the version holds now
// (CheckMoveRecord): a move forged on staging does not open prod's gate,
// nor does one signed for a record since replaced.
func CheckMove(ctx context.Context, b store.Backend, rel, version string, gates []string, trust ...*Trust) error {
	var t *Trust
	if len(trust) > 0 {
		t = trust[0]
	}
	rec, err := Get(ctx, b, rel, version)
	if errors.Is(err, store.ErrNotFound) {
		return NotPublished(ctx, b, rel, version)
	} else if err != nil {
		return err
	}
	y, err := YankState(ctx, b, rel, version)
	if err != nil {
		return err
	}
	// The entry in effect decides: an untrusted un-yank must not let a
	// yanked version through, nor an untrusted yank stop one silently.
	if err := t.CheckYank(ctx, b, y); err != nil {
		return err
	}
	if y != nil && y.Yanked {
		return &YankedError{Release: rel, Version: version, Yank: y}
	}
	var refused []*GateError
	for _, g := range gates {
		hist, err := History(ctx, b, rel, g, 0)
		if err != nil {
			return err
		}
		var seen []string
		ok := false
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].To == version {
				// The gate's move must have approved the record the
				// version holds now, not one it held before.
				err := t.CheckMoveRecord(ctx, b, hist[i], rec)
				if err == nil {
					ok = true
					break
				}
				if !errors.As(err, new(*UntrustedRecordError)) && !errors.As(err, new(*MoveRecordError)) {
					return err
				}
				continue // not the gate's move as far as the policy goes
			}
			if len(seen) < 10 {
				seen = append(seen, hist[i].To)
			}
		}
		if !ok {
			refused = append(refused, &GateError{Release: rel, Version: version, Gate: g, Seen: seen})
		}
	}
	switch len(refused) {
	case 0:
		return nil
	case 1:
		return refused[0]
	}
	return &GatesError{Refused: refused}
}

// GatesError is a move refused by several gates.
type GatesError struct{ Refused []*GateError }

func (e *GatesError) Error() string {
	msgs := make([]string, len(e.Refused))
	for i, g := range e.Refused {
		msgs[i] = g.Error()
	}
	return strings.Join(msgs, "; ")
}

// MoveRequest is a channel move as planned.
type MoveRequest struct {
	Release, Channel string
	// To is the version the channel moves to.
	To string
	// From is where the channel pointed when the move was planned ("" for
	// nowhere), Seq the number of the move in effect then (0 for none).
	// A negative Seq is a channel the plan did not read (a new one): the
	// move is written only as its first, or found already written.
	From string
	Seq  int
	// After says the move at Seq is one the caller does not vouch for (the
	// trust policy refuses it, or the record it names): the move is
	// written right after it, whatever it names — even where it points
	// already, so that the channel's move in effect is signed — and
	// From is ignored: the new move starts where that one ends, the link
	// History requires of every move, which vouches for nothing.
	After bool
	// Reason is recorded with the move.
	Reason string
	// Requires are the gates: channels of the release that must have
	// pointed at To before.
	Requires []string
	// Trust, when enabled, counts only the gates' moves it trusts.
	Trust *Trust
}

// MoveTo moves a channel by the writer's protocol (see protocol.go): it
// validates req, holds the version the move names, checks the move
// (CheckMove: published, not yanked, every gate passed) and that the
// channel is still where the plan saw it, and writes the move after it. A
// channel already moved there from there (an earlier apply that wrote
// this move and failed to save it) is returned as it is, and nothing is
// written; one moved there from there with another reason is someone
// else's move: a *MovedError (Foreign), and nothing is signed.
//
// Invalid input (the release, channel, version, reason or a gate) is an
// *InvalidError, refused before anything is held or written. A move
// CheckMove refuses is its error as it is (*NotPublishedError,
// *YankedError, *GateError, *GatesError); a channel moved elsewhere since
// the plan is a *MovedError (from the write step too, wrapped in its
// *StepError). A failure of the store is a *StepError saying at which
// step: StepHold, StepCheck (reading the version, its yanks, the gates
// and the channel) or StepWrite. If it stops before the write, or the
// write lost to another move, the lease is dropped.
func MoveTo(ctx context.Context, st *store.Store, req MoveRequest, now time.Time, opts ...Option) (*Move, error) {
	o := collect(opts)
	if err := req.validate(); err != nil {
		return nil, err
	}
	lease, err := hold(ctx, st, VersionKey(req.Release, req.To))
	if err != nil {
		return nil, err
	}
	wrote := false
	defer func() {
		if !wrote {
			lease.Drop(ctx)
		}
	}()
	b, rel, ch := st.Backend(), req.Release, req.Channel
	// Checked again: a yank or a gate may have changed since plan.
	if err := CheckMove(ctx, b, rel, req.To, req.Requires, req.Trust); err != nil {
		return nil, checkError(err)
	}
	cur, err := Current(ctx, b, rel, ch)
	if err != nil {
		return nil, &StepError{Step: StepCheck, Err: err}
	}
	switch {
	case req.After && cur == nil:
		return nil, fmt.Errorf("the channel %s of %s has no moves any more, but was at move %d at plan: plan again", ch, rel, req.Seq)
	case req.After && cur.Seq != req.Seq:
		return nil, &MovedError{Release: rel, Channel: ch, Now: cur}
	case req.After:
		req.From = cur.To
	case cur != nil && cur.To == req.To && cur.From == req.From && (req.Seq < 0 || cur.Seq == req.Seq+1) && cur.Reason != req.Reason:
		// Where this move would go, but not this move: not adopted, and
		// not signed (a writer signs only what it wrote).
		return nil, &MovedError{Release: rel, Channel: ch, Now: cur, Reason: req.Reason, Foreign: true}
	case cur != nil && cur.To == req.To && cur.From == req.From && (req.Seq < 0 || cur.Seq == req.Seq+1):
		// Already there: an earlier apply wrote this very move (every
		// field but its time is this move's, and its time is recent: see
		// signFound). Its lease is kept, as that apply's was; it is signed
		// if that apply did not.
		wrote = true
		extra, err := o.moveSubjects(ctx, b, cur)
		if err != nil {
			return nil, err
		}
		if err := o.signFound(ctx, b, moveKey(rel, ch, cur.Seq), cur.encode(), KindMove, extra, recent("at", cur.At, now)); err != nil {
			return nil, err
		}
		return cur, nil
	case cur == nil && req.From != "":
		return nil, fmt.Errorf("the channel %s of %s has no moves any more, but pointed to %s at plan: plan again", ch, rel, req.From)
	case cur != nil && (req.Seq < 0 || cur.To != req.From || cur.Seq != req.Seq):
		return nil, &MovedError{Release: rel, Channel: ch, Now: cur}
	}
	n := 0
	if cur != nil {
		n = cur.Seq
	}
	if err := o.runBeforeWrite(ctx); err != nil {
		return nil, err
	}
	m, err := WriteMove(ctx, b, rel, ch, n, req.From, req.To, req.Reason, now)
	// Lost to another move: this one was not written.
	wrote = !errors.As(err, new(*MovedError))
	if err != nil {
		return nil, &StepError{Step: StepWrite, Err: err}
	}
	extra, err := o.moveSubjects(ctx, b, m)
	if err != nil {
		return nil, err
	}
	if err := o.sign(ctx, b, moveKey(rel, ch, m.Seq), m.encode(), KindMove, extra); err != nil {
		return nil, err
	}
	return m, nil
}

// moveSubjects are the extra subjects of m's statement when the operation
// signs: the record of the version it moves to (its key, and the sha256 of
// its stored bytes), so that the signature says which record the move
// approved, not only its version string (Trust.CheckMoveRecord). Nothing
// is read without a signer.
func (o options) moveSubjects(ctx context.Context, b store.Backend, m *Move) ([]signature.Subject, error) {
	if o.signer == nil {
		return nil, nil
	}
	return moveSubjects(ctx, b, m)
}

// moveSubjects are the extra subjects of m's statement (see
// options.moveSubjects), signer or not.
func moveSubjects(ctx context.Context, b store.Backend, m *Move) ([]signature.Subject, error) {
	_, raw, err := GetStored(ctx, b, m.Release, m.To)
	if err != nil {
		return nil, &SignatureError{Key: moveKey(m.Release, m.Channel, m.Seq), Err: fmt.Errorf("reading the record it moves to: %w", err)}
	}
	return []signature.Subject{{Name: VersionKey(m.Release, m.To), Digest: digest.Bytes(raw)}}, nil
}

// checkError returns err of CheckMove as MoveTo returns it: a refusal of
// the move as it is, anything else (a failure of the store, an altered
// entry) as a *StepError at StepCheck.
func checkError(err error) error {
	switch {
	case errors.As(err, new(*NotPublishedError)), errors.As(err, new(*YankedError)),
		errors.As(err, new(*GateError)), errors.As(err, new(*GatesError)):
		return err
	}
	return &StepError{Step: StepCheck, Err: err}
}

// validate is the first step of the writer's protocol for req (see
// protocol.go): it checks the input alone, reading nothing.
func (req MoveRequest) validate() error {
	if err := CheckName(req.Release); err != nil {
		return invalid(InputRelease, "", err)
	}
	if err := CheckChannel(req.Channel); err != nil {
		return invalid(InputChannel, "", err)
	}
	if _, err := versions.Parse(req.To); err != nil {
		return invalid(InputVersion, "", err)
	}
	if err := CheckReason(req.Reason); err != nil {
		return invalid(InputReason, "", err)
	}
	for _, g := range req.Requires {
		if err := CheckChannel(g); err != nil {
			return invalid(InputRequires, g, err)
		}
	}
	return nil
}

// WriteMove writes the move after seq (the position the plan saw: 0 for a
// channel with no moves) from the version there to version: the write
// step of MoveTo alone, with no lease and no check of the move. It is for
// stores being seeded (tests) where no collector runs; a resource calls
// MoveTo. Another move written after seq first: *MovedError, and nothing
// is written.
func WriteMove(ctx context.Context, b store.Backend, rel, channel string, seq int, from, version, reason string, now time.Time) (*Move, error) {
	if err := CheckChannel(channel); err != nil {
		return nil, invalid(InputChannel, "", err)
	}
	if err := CheckReason(reason); err != nil {
		return nil, invalid(InputReason, "", err)
	}
	if int64(seq)+1 > maxSeq {
		return nil, fmt.Errorf("the channel %s of %s has %d moves, the most there can be", channel, rel, maxSeq)
	}
	m := &Move{Spec: ChannelSpec, Release: rel, Channel: channel, Seq: seq + 1, From: from, To: version, Reason: reason, At: now.UTC().Format(time.RFC3339)}
	err := b.Create(ctx, moveKey(rel, channel, m.Seq), bytes.NewReader(m.encode()))
	if errors.Is(err, store.ErrExists) {
		// Another apply's move: this one's, landed with its answer lost,
		// is not ErrExists (Backend.Create checks what a retry meets).
		now, err := Current(ctx, b, rel, channel)
		if err != nil {
			return nil, err
		}
		return nil, &MovedError{Release: rel, Channel: channel, Now: now}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
