package signcli

// Which signed record a command is about: a release version (--release),
// a channel move (--move, --channel), a yank entry (--yank), a build
// action record (--action), or any of them by its key (--record).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

const targetHelp = `  --release NAME@VERSION      a release version (web@1.4.0)
  --channel RELEASE/CHANNEL   the channel's current move (web/prod)
  --move RELEASE/CHANNEL@SEQ  one move of a channel (web/prod@3)
  --yank NAME@VERSION[#SEQ]   a version's latest yank entry, or entry SEQ
  --action sha256:HEX         a build step's action record, by its key
                              (the immutable_build's key attribute)
  --record KEY                any of these by its key in the store, such as
                              releases/web/versions/1.4.0,
                              channels/web/prod/moves/0000000003,
                              releases/web/yanks/1.4.0/0000000001 or
                              actions/sha256/ab/ab12...
`

// targetFlags are the options that name the record.
type targetFlags struct {
	record, move, channel, yank, action string
}

func (c *command) addTargetFlags() {
	c.fs.StringVar(&c.target.record, "record", "", "the record at `KEY` in the store (a version, move, yank entry or build action record)")
	c.fs.StringVar(&c.target.move, "move", "", "the channel move `RELEASE/CHANNEL@SEQ`")
	c.fs.StringVar(&c.target.channel, "channel", "", "the current move of the channel `RELEASE/CHANNEL`")
	c.fs.StringVar(&c.target.yank, "yank", "", "the latest yank entry of `NAME@VERSION` (NAME@VERSION#SEQ: entry SEQ)")
	c.fs.StringVar(&c.target.action, "action", "", "the build action record of the step key `sha256:HEX`")
}

// target is the record a command is about, as its options name it:
// either key (known without reading the store) or a channel (rel, ch)
// whose current move is meant, or a version's latest yank entry.
type target struct {
	key           string
	rel, ch       string // --channel
	name, version string // --yank without #SEQ
	family        store.Family
}

// address checks the options that name the record: exactly one, well
// formed. A key given with --record must be a signed record's key of the
// store's layout (relative to the store, so nothing outside it is read).
func (c *command) address() (*target, error) {
	var given []string
	for _, f := range []struct{ name, v string }{{"--release", c.release}, {"--record", c.target.record}, {"--move", c.target.move},
		{"--channel", c.target.channel}, {"--yank", c.target.yank}, {"--action", c.target.action}} {
		if f.v != "" {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		return nil, usagef("no record: give --release NAME@VERSION, --channel RELEASE/CHANNEL, --move RELEASE/CHANNEL@SEQ, " +
			"--yank NAME@VERSION, --action sha256:HEX or --record KEY")
	case 1:
	default:
		return nil, usagef("give one of %s, not %d", strings.Join(given, ", "), len(given))
	}
	switch {
	case c.release != "":
		name, version, err := c.nameVersion(true)
		if err != nil {
			return nil, err
		}
		return &target{key: release.VersionKey(name, version), family: store.FamilyVersion}, nil
	case c.target.record != "":
		k, ok := store.ParseKey(c.target.record)
		switch {
		case !ok && k.Family != store.FamilyUnknown:
			return nil, usagef("--record %q is not a well-formed %s key (%s)", c.target.record, familyName(k.Family), k.Family)
		case !ok:
			return nil, usagef("--record %q is not a key of the store's layout: give the key of a release version "+
				"(releases/NAME/versions/VERSION), a channel move (channels/RELEASE/CHANNEL/moves/SEQ, ten digits), "+
				"a yank entry (releases/NAME/yanks/VERSION/SEQ) or a build action record (actions/sha256/HH/HEX)", c.target.record)
		case familyName(k.Family) == "":
			return nil, usagef("--record %q is a %s key, which is not a signed record: give a release version's, a channel move's, "+
				"a yank entry's or a build action record's key", c.target.record, k.Family)
		}
		return &target{key: c.target.record, family: k.Family}, nil
	case c.target.move != "":
		ref, seqText, ok := strings.Cut(c.target.move, "@")
		if !ok {
			return nil, usagef("--move %q has no sequence number: write RELEASE/CHANNEL@SEQ, such as web/prod@3 (--channel web/prod is the current move)", c.target.move)
		}
		rel, ch, err := channelRef("--move", ref)
		if err != nil {
			return nil, err
		}
		seq, err := strconv.Atoi(seqText)
		if err != nil || seq < 1 || int64(seq) > 9999999999 {
			return nil, usagef("--move %q: the sequence number %q is not a move's (1, 2, …)", c.target.move, seqText)
		}
		return &target{key: store.MoveKey(rel, ch, seq), family: store.FamilyMove}, nil
	case c.target.channel != "":
		rel, ch, err := channelRef("--channel", c.target.channel)
		if err != nil {
			return nil, err
		}
		return &target{rel: rel, ch: ch, family: store.FamilyMove}, nil
	case c.target.yank != "":
		ref, seqText, hasSeq := strings.Cut(c.target.yank, "#")
		name, version, ok := strings.Cut(ref, "@")
		if !ok {
			return nil, usagef("--yank %q has no version: write NAME@VERSION, such as web@1.4.0 (NAME@VERSION#SEQ for entry SEQ)", c.target.yank)
		}
		if err := release.CheckName(name); err != nil {
			return nil, usagef("--yank %q: %v", c.target.yank, err)
		}
		if _, err := versions.Parse(version); err != nil {
			return nil, usagef("--yank %q: %v", c.target.yank, err)
		}
		if !hasSeq {
			return &target{name: name, version: version, family: store.FamilyYank}, nil
		}
		seq, err := strconv.Atoi(seqText)
		if err != nil || seq < 1 || int64(seq) > 9999999999 {
			return nil, usagef("--yank %q: the entry number %q is not a yank entry's (1, 2, …)", c.target.yank, seqText)
		}
		return &target{key: store.YankKey(name, version, seq), family: store.FamilyYank}, nil
	default:
		sum, err := digest.Parse(c.target.action)
		if err != nil {
			return nil, usagef("--action: %v (the step's key, as the immutable_build's key attribute shows it)", err)
		}
		return &target{key: store.ActionKey(sum), family: store.FamilyAction}, nil
	}
}

// familyName names the kinds of record a command addresses, "" for any
// other family.
func familyName(f store.Family) string {
	switch f {
	case store.FamilyVersion:
		return "release version"
	case store.FamilyMove:
		return "channel move"
	case store.FamilyYank:
		return "yank entry"
	case store.FamilyAction:
		return "build action record"
	}
	return ""
}

// channelRef checks RELEASE/CHANNEL given with flag.
func channelRef(flag, s string) (rel, ch string, err error) {
	rel, ch, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", usagef("%s %q: write RELEASE/CHANNEL, such as web/prod", flag, s)
	}
	if err := release.CheckName(rel); err != nil {
		return "", "", usagef("%s %q: %v", flag, s, err)
	}
	if err := release.CheckChannel(ch); err != nil {
		return "", "", usagef("%s %q: %v", flag, s, err)
	}
	return rel, ch, nil
}

// resolve finds the key of a record named by what it is now (a channel's
// current move, a version's latest yank entry).
func (t *target) resolve(ctx context.Context, b store.Backend) error {
	switch {
	case t.key != "":
		return nil
	case t.rel != "":
		m, err := release.Current(ctx, b, t.rel, t.ch)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("the channel %s/%s has no moves: check --channel and --store", t.rel, t.ch)
		}
		t.key = store.MoveKey(t.rel, t.ch, m.Seq)
	default:
		y, err := release.YankState(ctx, b, t.name, t.version)
		if err != nil {
			return err
		}
		if y == nil {
			return fmt.Errorf("%s@%s has no yank entries (it was never yanked): check --yank and --store", t.name, t.version)
		}
		t.key = store.YankKey(t.name, t.version, y.Seq)
	}
	return nil
}

// read reads the record t names, checked as its family's readers check
// it, and its signatures; a is nil only with err set. act is the build
// action record, for an action.
func (t *target) read(ctx context.Context, b store.Backend) (a *release.Approval, act *actioncache.Record, err error) {
	if err := t.resolve(ctx, b); err != nil {
		return nil, nil, err
	}
	if t.family != store.FamilyAction {
		a, err := release.ReadApprovalAt(ctx, b, t.key)
		if k, _ := store.ParseKey(t.key); k.Family == store.FamilyVersion {
			return a, nil, recordError(k.Release, k.Version, err)
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("%s is not in this store: check the record's name and --store", t.key)
		}
		return a, nil, err
	}
	k, _ := store.ParseKey(t.key)
	rc, err := b.Open(ctx, t.key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%s is not in this store (no build of the step key %s is cached): check --action and --store", t.key, k.Digest)
	}
	if err != nil {
		return nil, nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	_ = rc.Close() // read-only
	if err != nil {
		return nil, nil, err
	}
	rec, err := actioncache.ParseRecord(raw, k.Digest, t.key)
	if err != nil {
		return nil, nil, err
	}
	a, err = release.ApprovalOf(ctx, b, t.key, raw)
	return a, rec, err
}
