package release

// Verification: every reader checks a record it read from the store
// (a release version, a channel move, a build action record) through one
// Trust, made once per operation.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// Trust is a verification policy, and the memory of one operation's
// checks: each record's signatures are listed, read and checked once per
// Trust. Make one per operation (the provider does, per Configure); a nil
// *Trust, or one with no keys and Require false, checks nothing and reads
// nothing.
//
// With keys, a record passes when a trusted key's valid signature names
// it (its key and the sha256 of its stored bytes). A record without any
// signature passes only when Require is false (a store still being
// signed); a record that carries signatures, none of them a trusted key's
// valid one (a tampered signature, an untrusted or revoked signer, a
// signature of another record), is refused whether or not Require is set:
// someone signed it, and not as the policy trusts.
//
// Channels adds per-channel requirements: a version a channel named there
// moves to, or is read through, must also carry a valid signature by one
// of that channel's keys (CheckChannel). Those keys are trusted by the
// general policy too (a release manager's signature alone passes it).
type Trust struct {
	Keys     []*signature.Verifier
	Require  bool
	Channels map[string][]*signature.Verifier

	mu   sync.Mutex
	done map[trustKey]*trustResult
}

type trustKey struct {
	key string
	sum digest.Sum
}

type trustResult struct {
	once  sync.Once
	envs  []*signature.Envelope // the record's signatures, read once
	stray []*signature.StoredError
	err   error // the general policy's verdict, or the read's error
}

// NewTrust returns a policy trusting keys; require refuses unsigned
// records too.
func NewTrust(keys []*signature.Verifier, require bool) *Trust {
	return &Trust{Keys: keys, Require: require}
}

// Enabled reports whether t checks anything.
func (t *Trust) Enabled() bool {
	return t != nil && (len(t.Keys) > 0 || t.Require || len(t.Channels) > 0)
}

// trusted are the keys the general policy trusts: Keys and every
// channel's.
func (t *Trust) trusted() []*signature.Verifier {
	out := slices.Clone(t.Keys)
	for _, ch := range slices.Sorted(maps.Keys(t.Channels)) {
		out = append(out, t.Channels[ch]...)
	}
	return out
}

// UntrustedRecordError is a record refused by the policy: no valid
// signature by a trusted key names it.
type UntrustedRecordError struct {
	Key string // the record's key
	// Found are the key IDs the record's signatures name (as claimed),
	// sorted; Invalid those of trusted keys whose signature did not
	// verify or named another record, each with its name (Label).
	Found, Invalid []string
	// Unsigned is a record with no signature at all (refused under
	// Require).
	Unsigned bool
	// Detail says why the signatures found do not count.
	Detail string
	// Others are the keys of other records refused by the same read (a
	// list of versions, a channel's history), sorted as read.
	Others []string
	// Stray are the objects among the record's signatures that are not
	// signatures (junk someone stored there): each ignored, and named.
	Stray []*signature.StoredError
}

// maxStrayShown bounds how many stray objects a message names.
const maxStrayShown = 10

// strayText names the stray objects of a record refused, and says what
// they are.
func strayText(stray []*signature.StoredError) string {
	if len(stray) == 0 {
		return ""
	}
	var parts []string
	for i, s := range stray {
		if i == maxStrayShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(stray)-maxStrayShown))
			break
		}
		parts = append(parts, s.Error())
	}
	return fmt.Sprintf(". Stored among its signatures, and ignored: %s. Those objects are not signatures and count for nothing either way: "+
		"delete the stray objects from the store (and nothing else), or ignore them", strings.Join(parts, "; "))
}

// action reports whether the record refused is a build action record.
func (e *UntrustedRecordError) action() bool {
	k, _ := store.ParseKey(e.Key)
	return k.Family == store.FamilyAction
}

func (e *UntrustedRecordError) Error() string {
	var b strings.Builder
	if e.action() {
		b.WriteString("build cache hit refused: ")
	}
	switch {
	case e.Unsigned:
		fmt.Fprintf(&b, "the record %s has no signature, and the trust policy requires one (require_signatures)", e.Key)
	case len(e.Found) == 0:
		fmt.Fprintf(&b, "the record %s has no valid signature by a trusted key: it has no signature", e.Key)
	default:
		fmt.Fprintf(&b, "the record %s has no valid signature by a trusted key: its signatures name key IDs %s", e.Key, signature.ShowKeyIDs(e.Found))
		if len(e.Invalid) > 0 {
			fmt.Fprintf(&b, "; those of trusted keys %s do not verify or name another record (the record or its signature was altered)",
				strings.Join(e.Invalid, ", "))
		}
		if e.Detail != "" {
			fmt.Fprintf(&b, " (%s)", e.Detail)
		}
	}
	if n := len(e.Others); n > 0 {
		shown := e.Others[:min(n, 5)]
		what := "other records read with it are"
		if n == 1 {
			what = "other record read with it is"
		}
		fmt.Fprintf(&b, "; %d %s refused too: %s", n, what, strings.Join(shown, ", "))
		if n > len(shown) {
			b.WriteString(", …")
		}
	}
	b.WriteString(strayText(e.Stray))
	// Every signed record can be countersigned by a holder of a trusted
	// key (a key rotated in: its old signer's public key vouches for it).
	sign := "`" + SignCommand(e.Key) + "`"
	if e.action() {
		b.WriteString(". A build record is used only when a trusted key signed it (its provenance). If its signer's key was " +
			"trusted (before a key rotation, say), have a holder of a trusted key countersign it, which signs the same provenance " +
			"again: " + sign + "; or add the signer's public key to the provider's trust.keys. Otherwise it may be poisoned " +
			"(right key, another output): delete the record (and nothing else) from the store and apply with a trusted " +
			"signing_key, which builds the step again and signs its record")
		return b.String()
	}
	k, _ := store.ParseKey(e.Key)
	switch k.Family {
	case store.FamilyYank:
		// A yank entry decides which versions resolve: ignoring it would
		// un-yank a version (or yank one) on the word of an unknown writer.
		b.WriteString(". A yank entry decides which versions resolve, so it is not ignored. If its signer's key was trusted " +
			"(before a key rotation, say), have a holder of a trusted key countersign it: " + sign + "; or add the signer's " +
			"public key to the provider's trust.keys (entries written before signing pass with require_signatures = false). " +
			"Otherwise write a signed entry after it with a trusted signing_key: an immutable_yank of the version yanks it " +
			"(import a yank in effect first: under the policy only its position is imported; apply yanks again, destroy " +
			"un-yanks), and check who can write the store")
	case store.FamilyMove:
		b.WriteString(". If the move is genuine (signed by a key trusted before a key rotation, say), have a holder of a " +
			"trusted key countersign it: " + sign + "; or add its signer's public key to the provider's trust.keys. Otherwise " +
			"apply the configuration managing the channel (immutable_channel) with a trusted signing_key: its plan writes a " +
			"signed move after it, to the version it names. Check who can write the store")
	default:
		b.WriteString(". Have a holder of a trusted key countersign it: " + sign + " (or an apply whose signing_key is " +
			"trusted), or, if its signer should be trusted, add that key's public key to the provider's trust.keys")
	}
	return b.String()
}

// SignCommand is the command with which a holder of a trusted key
// countersigns the record at key, once its signer's public key
// (SIGNER.pub) vouches for it: `sign` with the option that names the
// record (--release, --move, --yank, --action; --record for a key of no
// signed family).
func SignCommand(key string) string {
	k, ok := store.ParseKey(key)
	addr := "--record " + key
	if ok {
		switch k.Family {
		case store.FamilyVersion:
			addr = "--release " + k.Release + "@" + k.Version
		case store.FamilyMove:
			addr = fmt.Sprintf("--move %s/%s@%d", k.Release, k.Channel, k.Seq)
		case store.FamilyYank:
			addr = fmt.Sprintf("--yank %s@%s#%d", k.Release, k.Version, k.Seq)
		case store.FamilyAction:
			addr = "--action " + k.Digest.String()
		}
	}
	return "terraform-provider-immutable sign --store STORE --key TRUSTED-KEY.pem --trusted-key SIGNER.pub " + addr
}

// Check returns nil when the record stored at key, whose stored bytes
// have the sha256 sum, may be used under t; otherwise an
// *UntrustedRecordError, or the store's error reading its signatures.
// Each (key, sum) is checked once per Trust. A signature counts only with
// the predicate type of the key's family: a SLSA provenance for a build
// action record, RecordPredicateType for every other.
func (t *Trust) Check(ctx context.Context, b store.Backend, key string, sum digest.Sum) error {
	if !t.Enabled() {
		return nil
	}
	_, err := t.result(ctx, b, key, sum)
	return err
}

// result is the memoised read and general verdict of the record at key.
func (t *Trust) result(ctx context.Context, b store.Backend, key string, sum digest.Sum) ([]*signature.Envelope, error) {
	k := trustKey{key, sum}
	t.mu.Lock()
	if t.done == nil {
		t.done = map[trustKey]*trustResult{}
	}
	r, ok := t.done[k]
	if !ok {
		r = &trustResult{}
		t.done[k] = r
	}
	t.mu.Unlock()
	r.once.Do(func() { r.envs, r.stray, r.err = t.check(ctx, b, key, sum) })
	if r.err != nil && !errors.As(r.err, new(*UntrustedRecordError)) {
		// A failure of the store is not remembered: the next reader tries again.
		t.mu.Lock()
		if t.done[k] == r {
			delete(t.done, k)
		}
		t.mu.Unlock()
	}
	return r.envs, r.err
}

// CheckAction checks the build action record of the step key, whose
// stored bytes have the sha256 sum (a record is stored in canonical form:
// the sum of its Encode), read by actioncache.Lookup. Its statement is a
// SLSA provenance.
func (t *Trust) CheckAction(ctx context.Context, b store.Backend, key, sum digest.Sum) error {
	if !t.Enabled() {
		return nil
	}
	return t.Check(ctx, b, store.ActionKey(key), sum)
}

// CheckRecord checks a release record read by Get.
func (t *Trust) CheckRecord(ctx context.Context, b store.Backend, r *Record) error {
	if !t.Enabled() {
		return nil
	}
	return t.Check(ctx, b, VersionKey(r.Name, r.Version), r.StoredDigest())
}

// CheckMove checks a channel move read by History or Current (a move is
// stored in canonical form, so its bytes are its encoding).
func (t *Trust) CheckMove(ctx context.Context, b store.Backend, m *Move) error {
	if !t.Enabled() {
		return nil
	}
	return t.Check(ctx, b, moveKey(m.Release, m.Channel, m.Seq), digest.Bytes(m.encode()))
}

func (t *Trust) check(ctx context.Context, b store.Backend, key string, sum digest.Sum) ([]*signature.Envelope, []*signature.StoredError, error) {
	envs, stray, err := ReadStored(ctx, b, key, sum)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the signatures of %s: %w", key, err)
	}
	return envs, stray, judge(envs, stray, t.trusted(), t.Require, key, sum)
}

// judge is the verdict on the record at key, whose stored bytes have the
// sha256 sum, carrying the signatures envs and, beside them, the stray
// objects stray (which are not signatures, and count for nothing): nil
// when one of envs is a valid signature by a key of trusted about exactly
// this record (with its family's predicate type), or when there are none
// and require is false; otherwise an *UntrustedRecordError naming the
// strays too.
func judge(envs []*signature.Envelope, stray []*signature.StoredError, trusted []*signature.Verifier, require bool, key string, sum digest.Sum) error {
	if len(envs) == 0 {
		if require {
			return &UntrustedRecordError{Key: key, Unsigned: true, Stray: stray}
		}
		return nil
	}
	e := &UntrustedRecordError{Key: key, Stray: stray}
	var details []string
	for _, env := range envs {
		for _, s := range env.Signatures {
			e.Found = append(e.Found, s.KeyID)
		}
		_, err := signature.VerifyRecord(env, trusted, key, sum, PredicateType(key))
		if err == nil {
			return nil
		}
		var ue *signature.UntrustedError
		if errors.As(err, &ue) {
			e.Invalid = append(e.Invalid, ue.Invalid...)
			continue
		}
		// Signed by a trusted key, but about something else.
		if _, ids, verr := signature.Verify(env, trusted); verr == nil {
			e.Invalid = append(e.Invalid, ids...)
		}
		details = append(details, err.Error())
	}
	slices.Sort(e.Found)
	e.Found = slices.Compact(e.Found)
	e.Invalid = labels(e.Invalid, trusted)
	slices.Sort(e.Invalid)
	e.Invalid = slices.Compact(e.Invalid)
	slices.Sort(details)
	e.Detail = strings.Join(slices.Compact(details), "; ")
	return e
}

// PredicateType is the predicate type of the statement signing the
// record at key: a build action record's is a SLSA provenance, every other
// record's RecordPredicateType.
func PredicateType(key string) string {
	if k, _ := store.ParseKey(key); k.Family == store.FamilyAction {
		return signature.ProvenancePredicateType
	}
	return RecordPredicateType
}

// Get reads a version's record (Get) and checks it under t: the one read
// of a record every reader goes through.
func (t *Trust) Get(ctx context.Context, b store.Backend, name, version string) (*Record, error) {
	r, err := Get(ctx, b, name, version)
	if err != nil {
		return nil, err
	}
	if err := t.CheckRecord(ctx, b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ChannelPolicyError is a version refused by a channel's requirement: no
// valid signature by one of the channel's keys names its record.
type ChannelPolicyError struct {
	Channel, Name, Version string
	Key                    string   // the record's key
	Required               []string // the channel's key IDs with their names (Label), sorted
	Found                  []string // the key IDs the record's signatures name, sorted
}

func (e *ChannelPolicyError) Error() string {
	found := "it has no signature"
	if len(e.Found) > 0 {
		found = "its signatures name key IDs " + signature.ShowKeyIDs(e.Found) + ", none of them a valid signature by those keys"
	}
	return fmt.Sprintf("the channel %s takes only versions signed by key IDs %s (trust.channels[%q]), and %s@%s (%s) is not: %s. "+
		"Have a holder of one of those keys approve it (`terraform-provider-immutable sign --key rm-key.pem --store STORE --release %s@%s "+
		"--trusted-key ci.pub`, which countersigns only a record its publisher's trusted key signed; `--dry-run` shows what is approved), "+
		"or choose a version so signed", e.Channel, strings.Join(e.Required, ", "), e.Channel, e.Name, e.Version, e.Key, found, e.Name, e.Version)
}

// CheckChannel checks r, a version the channel ch moves to or is read
// through: under the general policy (CheckRecord), and, when ch has keys
// in Channels, for a valid signature by one of them naming r: else a
// *ChannelPolicyError. The record's signatures are the ones CheckRecord
// read (once per Trust).
func (t *Trust) CheckChannel(ctx context.Context, b store.Backend, ch string, r *Record) error {
	if !t.Enabled() {
		return nil
	}
	key, sum := VersionKey(r.Name, r.Version), r.StoredDigest()
	envs, err := t.result(ctx, b, key, sum)
	if err != nil {
		return err
	}
	keys, ok := t.Channels[ch]
	if !ok {
		return nil
	}
	e := &ChannelPolicyError{Channel: ch, Name: r.Name, Version: r.Version, Key: key}
	for _, k := range keys {
		e.Required = append(e.Required, k.Label())
	}
	for _, env := range envs {
		if VerifySignature(env, keys, key, sum) == nil {
			return nil
		}
		for _, s := range env.Signatures {
			e.Found = append(e.Found, s.KeyID)
		}
	}
	slices.Sort(e.Required)
	e.Required = slices.Compact(e.Required)
	slices.Sort(e.Found)
	e.Found = slices.Compact(e.Found)
	return e
}

// labels is ids with each trusted key's ID replaced by its Label.
func labels(ids []string, trusted []*signature.Verifier) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		for _, v := range trusted {
			if v.KeyID() == id {
				out[i] = v.Label()
				break
			}
		}
	}
	return out
}
