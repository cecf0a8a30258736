package signcli

// What `sign` prints of a move, a yank entry or a build action record
// before approving it (a release version: printApproval).

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// label names the record a is about for messages: web@1.4.0, move 3 of
// web/prod, yank entry 1 of web@1.4.0, the build record actions/….
func label(a *release.Approval) string {
	switch {
	case a.Record != nil:
		return a.Record.Name + "@" + a.Record.Version
	case a.Move != nil:
		return fmt.Sprintf("move %d of %s/%s", a.Move.Seq, a.Move.Release, a.Move.Channel)
	case a.Yank != nil:
		return fmt.Sprintf("yank entry %d of %s@%s", a.Yank.Seq, a.Yank.Name, a.Yank.Version)
	}
	return "the build record " + a.Key
}

// printRecord prints what an approval of a is about (act: the build
// action record, for one), then its signatures. Text read from the store
// is printed through usertext.Show.
func printRecord(ctx context.Context, b store.Backend, out io.Writer, a *release.Approval, act *actioncache.Record, trusted []*signature.Verifier) error {
	if a.Record != nil {
		return printApproval(out, a, trusted)
	}
	var w strings.Builder
	fmt.Fprintf(&w, "approving %s\n", label(a))
	fmt.Fprintf(&w, "  record     %s\n", a.Key)
	fmt.Fprintf(&w, "  sha256     %s (what --digest states)\n", a.Digest())
	switch {
	case a.Move != nil:
		m := a.Move
		from := m.From
		if from == "" {
			from = "(none: the channel's first move)"
		}
		fmt.Fprintf(&w, "  move       %s → %s\n", usertext.Show(from), usertext.Show(m.To))
		fmt.Fprintf(&w, "  seq        %d\n", m.Seq)
		fmt.Fprintf(&w, "  reason     %s\n", usertext.Show(m.Reason))
		fmt.Fprintf(&w, "  at         %s\n", usertext.Show(m.At))
		// The record of the version it moves to, as it is now: a
		// signature by --digest alone names it (a trusted one's statement
		// names the record approved when it was signed).
		if _, raw, err := release.GetStored(ctx, b, m.Release, m.To); err == nil {
			fmt.Fprintf(&w, "  to record  %s sha256 %s\n", release.VersionKey(m.Release, m.To), digest.Bytes(raw))
		} else {
			fmt.Fprintf(&w, "  to record  %s cannot be read: %s\n", release.VersionKey(m.Release, m.To), usertext.Show(err.Error()))
		}
	case a.Yank != nil:
		y := a.Yank
		state := "un-yanked (resolves again)"
		if y.Yanked {
			state = "yanked (no longer resolves)"
		}
		fmt.Fprintf(&w, "  version    %s@%s\n", y.Name, y.Version)
		fmt.Fprintf(&w, "  state      %s\n", state)
		fmt.Fprintf(&w, "  seq        %d\n", y.Seq)
		fmt.Fprintf(&w, "  reason     %s\n", usertext.Show(y.Reason))
		fmt.Fprintf(&w, "  at         %s\n", usertext.Show(y.At))
	case act != nil:
		fmt.Fprintf(&w, "  step key   %s\n", act.Key)
		fmt.Fprintf(&w, "  output     %s (%s, %d bytes, %d files)\n", act.Output, act.Type, act.Size, act.Files)
		fmt.Fprintf(&w, "  log        %s\n", act.Log)
		fmt.Fprintf(&w, "  exit       %d after %d ms\n", act.Exit, act.Duration)
	}
	lines, _, _, _ := signatureStatus(a.Signatures, a.Stray, trusted, a.Key, a.Digest())
	fmt.Fprintf(&w, "signatures (%d):\n", len(lines)-len(a.Stray))
	for _, l := range lines {
		w.WriteString(usertext.Escape(l) + "\n")
	}
	_, err := io.WriteString(out, w.String())
	return err
}

// printProvenance prints the build provenance a countersignature of a
// build record signs again: the trusted signature's statement, verified.
func printProvenance(out io.Writer, st *signature.Statement) error {
	p, err := st.Provenance()
	if err != nil {
		return err
	}
	var w strings.Builder
	w.WriteString("provenance (signed again, byte for byte, from the trusted signature):\n")
	fmt.Fprintf(&w, "  builder    %s\n", usertext.Show(p.RunDetails.Builder.ID))
	if cmd, ok := p.BuildDefinition.ExternalParameters["command"].([]any); ok {
		parts := make([]string, len(cmd))
		for i, c := range cmd {
			parts[i] = usertext.Quote(fmt.Sprint(c))
		}
		fmt.Fprintf(&w, "  command    %s\n", strings.Join(parts, " "))
	}
	for _, s := range st.Subjects()[1:] {
		fmt.Fprintf(&w, "  subject    %s %s\n", usertext.Show(s.Name), s.Digest)
	}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		fmt.Fprintf(&w, "  uses       %s %s\n", usertext.Show(d.Name), usertext.Show(d.Digest["sha256"]))
	}
	_, err = io.WriteString(out, w.String())
	return err
}

// printSubjects prints the further subjects of the trusted statement a
// countersignature of a move or yank entry signs again: for a move, the
// record of its version as the trusted signature approved it (which the
// record read now may no longer be: verify then refuses the move).
func printSubjects(out io.Writer, st *signature.Statement) error {
	var w strings.Builder
	w.WriteString("statement (signed again, byte for byte, from the trusted signature):\n")
	for _, s := range st.Subjects() {
		fmt.Fprintf(&w, "  subject    %s %s\n", usertext.Show(s.Name), s.Digest)
	}
	_, err := io.WriteString(out, w.String())
	return err
}
