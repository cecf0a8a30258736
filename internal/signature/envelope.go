package signature

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope (github.com/secure-systems-lab/dsse); its JSON
// is what cosign verify-blob-attestation --signature reads.
type Envelope = dsse.Envelope

// Sign wraps statement (from NewStatement) in a DSSE envelope signed by s.
// The signature's keyid is s.KeyID(). (A keyid is an unsigned hint: Verify
// skips a signature whose keyid names another trusted key, and tries every
// trusted key when it is empty. cosign verify-blob-attestation --key ignores
// it, so our hex IDs do not stop cosign; go-securesystemslib's own
// verifier, given keys with no ID, would compare it with an SSH-style
// "SHA256:" fingerprint and skip ours.)
func Sign(s *Signer, statement []byte) (*Envelope, error) {
	if s == nil {
		return nil, errors.New("no signer")
	}
	if _, err := parseStatement(statement); err != nil {
		return nil, err
	}
	env := &Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(statement)}
	if err := AddSignature(env, s); err != nil {
		return nil, err
	}
	return env, nil
}

// AddSignature countersigns env with s (an approval of the same statement).
// A key that has already signed env is not added again.
func AddSignature(env *Envelope, s *Signer) error {
	if env == nil || s == nil {
		return errors.New("no envelope or no signer")
	}
	if env.PayloadType != PayloadType {
		return &PayloadTypeError{Got: env.PayloadType}
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return fmt.Errorf("envelope payload: %w", err)
	}
	pae := dsse.PAE(env.PayloadType, payload)
	for _, sig := range env.Signatures {
		if sig.KeyID == s.KeyID() {
			if raw, err := base64.StdEncoding.DecodeString(sig.Sig); err == nil && s.pub.verify(pae, raw) {
				return nil
			}
		}
	}
	raw, err := s.sign(pae)
	if err != nil {
		return err
	}
	env.Signatures = append(env.Signatures, dsse.Signature{KeyID: s.KeyID(), Sig: base64.StdEncoding.EncodeToString(raw)})
	return nil
}

// ParseEnvelope reads an envelope's JSON.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	return &env, nil
}

// PayloadTypeError says an envelope does not hold an in-toto statement.
type PayloadTypeError struct{ Got string }

func (e *PayloadTypeError) Error() string {
	return fmt.Sprintf("envelope payload type is %q, want %q", e.Got, PayloadType)
}

// UntrustedError says no signature on an envelope verifies with a trusted
// key. Found lists the key IDs the signatures name (as claimed: a keyid is
// not signed); Invalid lists trusted key IDs named by a signature that did
// not verify (a tampered payload or signature).
type UntrustedError struct {
	Found   []string
	Invalid []string
	Trusted int
}

func (e *UntrustedError) Error() string {
	var b strings.Builder
	switch len(e.Found) {
	case 0:
		b.WriteString("no signature on the envelope")
	default:
		fmt.Fprintf(&b, "no valid signature by a trusted key (%d trusted); signatures name key IDs %s", e.Trusted, ShowKeyIDs(e.Found))
	}
	if len(e.Invalid) > 0 {
		fmt.Fprintf(&b, "; the signatures of trusted keys %s do not verify: the record or its signature was altered", strings.Join(e.Invalid, ", "))
	}
	return b.String()
}

// MaxSignatures bounds the signatures Verify reads from one envelope: each
// is tried against every trusted key when its keyid is empty, so an
// envelope with thousands would cost that many verifications. (A stored
// envelope holds exactly one: ReadSignatures.)
const MaxSignatures = 16

// TooManySignaturesError is an envelope carrying more than MaxSignatures
// signatures: none is tried.
type TooManySignaturesError struct{ Count int }

func (e *TooManySignaturesError) Error() string {
	return fmt.Sprintf("the envelope carries %d signatures, more than the %d a verifier tries: none was checked", e.Count, MaxSignatures)
}

// Verify checks env's signatures against the trusted keys and returns the
// statement it holds and the IDs (sorted) of the trusted keys that signed
// it. It fails with *PayloadTypeError, *TooManySignaturesError,
// *UntrustedError or *StatementError.
// The caller still checks that the statement is about the record it read
// and of the predicate type it expects: VerifyRecord does both for a
// stored record (its first subject, not any subject, must be the record).
func Verify(env *Envelope, trusted []*Verifier) (*Statement, []string, error) {
	if env == nil {
		return nil, nil, errors.New("no envelope")
	}
	if env.PayloadType != PayloadType {
		return nil, nil, &PayloadTypeError{Got: env.PayloadType}
	}
	if len(env.Signatures) > MaxSignatures {
		return nil, nil, &TooManySignaturesError{Count: len(env.Signatures)}
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, nil, fmt.Errorf("envelope payload: %w", err)
	}
	pae := dsse.PAE(env.PayloadType, payload)
	var signed, found, invalid []string
	for _, sig := range env.Signatures {
		found = append(found, sig.KeyID)
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err != nil {
			continue // one garbled signature must not hide the others
		}
		for _, v := range trusted {
			if sig.KeyID != "" && sig.KeyID != v.id {
				continue
			}
			if v.verify(pae, raw) {
				signed = append(signed, v.id)
			} else if sig.KeyID == v.id {
				invalid = append(invalid, v.id)
			}
		}
	}
	if len(signed) == 0 {
		return nil, nil, &UntrustedError{Found: found, Invalid: invalid, Trusted: len(trusted)}
	}
	slices.Sort(signed)
	signed = slices.Compact(signed)
	st, err := parseStatement(payload)
	if err != nil {
		return nil, nil, err
	}
	return st, signed, nil
}

// ShowKeyIDs lists key IDs as claimed by the store (an envelope's keyid
// is whatever its writer put there), each through usertext.Show, so that
// none can reorder or hide the text around it.
func ShowKeyIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = usertext.Show(id)
	}
	return strings.Join(out, ", ")
}
