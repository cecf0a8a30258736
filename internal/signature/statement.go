package signature

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// StatementType is the _type of an in-toto v1 Statement.
//
// Statements are hand-written JSON structs following the in-toto v1 spec
// (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// rather than the protobuf types of github.com/in-toto/attestation/go/v1:
// protojson deliberately varies its whitespace between builds, so it cannot
// give the deterministic bytes a write-once store needs, and its predicate
// is a structpb.Struct that turns every number into a float64.
const StatementType = "https://in-toto.io/Statement/v1"

// Subject is one artifact a statement is about.
type Subject struct {
	Name   string
	Digest digest.Sum
}

// DigestSet is an in-toto digest set: algorithm name to lower-case hex.
type DigestSet map[string]string

// SHA256 is the digest set holding sum.
func SHA256(sum digest.Sum) DigestSet { return DigestSet{"sha256": sum.Hex()} }

// ResourceDescriptor is an in-toto v1 ResourceDescriptor: a statement's
// subject, a provenance's dependency or byproduct.
type ResourceDescriptor struct {
	Name             string         `json:"name,omitempty"`
	URI              string         `json:"uri,omitempty"`
	Digest           DigestSet      `json:"digest,omitempty"`
	Content          []byte         `json:"content,omitempty"`
	DownloadLocation string         `json:"downloadLocation,omitempty"`
	MediaType        string         `json:"mediaType,omitempty"`
	Annotations      map[string]any `json:"annotations,omitempty"`
}

type statementJSON struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     json.RawMessage      `json:"predicate,omitempty"`
}

// Statement is a verified in-toto v1 statement.
type Statement struct {
	payload       []byte
	subjects      []Subject
	predicateType string
	predicate     json.RawMessage
}

// NewStatement encodes an in-toto v1 statement about subjects. The bytes are
// deterministic: the same arguments give the same bytes (struct fields in
// declaration order, map keys sorted, no HTML escaping, no trailing newline).
func NewStatement(subjects []Subject, predicateType string, predicate any) ([]byte, error) {
	if len(subjects) == 0 {
		return nil, errors.New("a statement needs at least one subject")
	}
	if predicateType == "" {
		return nil, errors.New("a statement needs a predicate type")
	}
	st := statementJSON{Type: StatementType, PredicateType: predicateType}
	for _, s := range subjects {
		st.Subject = append(st.Subject, ResourceDescriptor{Name: s.Name, Digest: SHA256(s.Digest)})
	}
	if predicate != nil {
		p, err := marshal(predicate)
		if err != nil {
			return nil, fmt.Errorf("encoding the predicate: %w", err)
		}
		st.Predicate = p
	}
	return marshal(st)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// StatementError says a signed payload is not an in-toto v1 statement.
type StatementError struct{ Reason string }

func (e *StatementError) Error() string {
	return "the signed payload is not an in-toto v1 statement: " + e.Reason
}

func parseStatement(payload []byte) (*Statement, error) {
	var st statementJSON
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, &StatementError{Reason: err.Error()}
	}
	if st.Type != StatementType {
		return nil, &StatementError{Reason: fmt.Sprintf("_type is %q, want %q", st.Type, StatementType)}
	}
	if st.PredicateType == "" {
		return nil, &StatementError{Reason: "predicateType is empty"}
	}
	if len(st.Subject) == 0 {
		return nil, &StatementError{Reason: "it has no subject"}
	}
	out := &Statement{payload: payload, predicateType: st.PredicateType, predicate: st.Predicate}
	for i, s := range st.Subject {
		h, ok := s.Digest["sha256"]
		if !ok {
			return nil, &StatementError{Reason: fmt.Sprintf("subject %d (%q) has no sha256 digest", i, s.Name)}
		}
		sum, err := digest.ParseHex(h)
		if err != nil {
			return nil, &StatementError{Reason: fmt.Sprintf("subject %d (%q): %v", i, s.Name, err)}
		}
		out.subjects = append(out.subjects, Subject{Name: s.Name, Digest: sum})
	}
	return out, nil
}

// Subjects are the artifacts the statement is about, in its order.
func (s *Statement) Subjects() []Subject { return append([]Subject(nil), s.subjects...) }

// PredicateType is the statement's predicateType URI.
func (s *Statement) PredicateType() string { return s.predicateType }

// Predicate is the statement's predicate JSON (nil if it has none).
func (s *Statement) Predicate() json.RawMessage { return append(json.RawMessage(nil), s.predicate...) }

// DecodePredicate decodes the predicate into v after checking its type.
func (s *Statement) DecodePredicate(predicateType string, v any) error {
	if s.predicateType != predicateType {
		return &StatementError{Reason: fmt.Sprintf("predicateType is %q, want %q", s.predicateType, predicateType)}
	}
	if len(s.predicate) == 0 {
		return &StatementError{Reason: "it has no predicate"}
	}
	if err := json.Unmarshal(s.predicate, v); err != nil {
		return &StatementError{Reason: "predicate: " + err.Error()}
	}
	return nil
}

// Payload is the signed statement's bytes, exactly as signed.
func (s *Statement) Payload() []byte { return append([]byte(nil), s.payload...) }
