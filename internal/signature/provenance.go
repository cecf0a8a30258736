package signature

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// ProvenancePredicateType is the predicate type of SLSA Provenance v1
// (https://slsa.dev/spec/v1.0/provenance).
const ProvenancePredicateType = "https://slsa.dev/provenance/v1"

// Provenance is a SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what was built and from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   map[string]any       `json:"externalParameters"`
	InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// RunDetails is who built it and how the run went.
type RunDetails struct {
	Builder    Builder              `json:"builder"`
	Metadata   *BuildMetadata       `json:"metadata,omitempty"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// Builder identifies the build platform.
type Builder struct {
	ID                  string               `json:"id"`
	Version             map[string]string    `json:"version,omitempty"`
	BuilderDependencies []ResourceDescriptor `json:"builderDependencies,omitempty"`
}

// BuildMetadata is the run's invocation ID and times.
type BuildMetadata struct {
	InvocationID string     `json:"invocationId,omitempty"`
	StartedOn    *time.Time `json:"startedOn,omitempty"`
	FinishedOn   *time.Time `json:"finishedOn,omitempty"`
}

// NewProvenance is the skeleton of a provenance: the fields SLSA v1 requires
// (buildType, externalParameters, builder.id). The caller appends
// dependencies, byproducts and metadata.
func NewProvenance(buildType, builderID string, external map[string]any) *Provenance {
	if external == nil {
		external = map[string]any{}
	}
	return &Provenance{
		BuildDefinition: BuildDefinition{BuildType: buildType, ExternalParameters: external},
		RunDetails:      RunDetails{Builder: Builder{ID: builderID}},
	}
}

// Validate checks the fields SLSA v1 requires.
func (p *Provenance) Validate() error {
	switch {
	case p == nil:
		return errors.New("no provenance")
	case p.BuildDefinition.BuildType == "":
		return errors.New("provenance: buildDefinition.buildType is empty")
	case p.BuildDefinition.ExternalParameters == nil:
		return errors.New("provenance: buildDefinition.externalParameters is missing")
	case p.RunDetails.Builder.ID == "":
		return errors.New("provenance: runDetails.builder.id is empty")
	}
	if err := CheckURI(p.RunDetails.Builder.ID); err != nil {
		return fmt.Errorf("provenance: runDetails.builder.id: %w", err)
	}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		if d.Name == "" && d.URI == "" && len(d.Digest) == 0 {
			return errors.New("provenance: a resolved dependency has no name, uri or digest")
		}
	}
	return nil
}

// ProvenanceStatement encodes an in-toto statement whose predicate is p.
func ProvenanceStatement(subjects []Subject, p *Provenance) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return NewStatement(subjects, ProvenancePredicateType, p)
}

// Provenance decodes the statement's SLSA v1 provenance predicate.
func (s *Statement) Provenance() (*Provenance, error) {
	var p Provenance
	if err := s.DecodePredicate(ProvenancePredicateType, &p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, &StatementError{Reason: err.Error()}
	}
	return &p, nil
}

// MaxURI bounds a builder ID (CheckURI), in bytes.
const MaxURI = 1024

// uriSchemes are the schemes CheckURI accepts: a web address or a URN
// names a builder; javascript:, data: or file: would be acted on by
// whatever shows the ID as a link.
var uriSchemes = map[string]bool{"http": true, "https": true, "urn": true, "spiffe": true}

// CheckURI checks that s is an absolute URI (RFC 3986: a scheme, then the
// rest), as SLSA's TypeURI fields such as builder.id must be:
// "https://ci.example.com/runners/linux" or "urn:example:ci", not "ci".
// Its scheme must be http, https, urn or spiffe (a workload identity); it must be printable text (no
// control, bidi or invisible character: usertext.Check) of at most MaxURI
// bytes. Errors quote s escaped, and only when it is short.
func CheckURI(s string) error {
	if len(s) > MaxURI {
		return fmt.Errorf("it is %d bytes long; at most %d are allowed", len(s), MaxURI)
	}
	if err := usertext.Check("it", s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s is not a URI: %w", usertext.Quote(s), err)
	case !u.IsAbs():
		return fmt.Errorf("%s is not an absolute URI: it has no scheme (such as https:)", usertext.Quote(s))
	case !uriSchemes[strings.ToLower(u.Scheme)]:
		return fmt.Errorf("%s has the scheme %s: only http, https, urn and spiffe name a builder", usertext.Quote(s), usertext.Quote(u.Scheme+":"))
	case u.Opaque == "" && u.Host == "" && u.Path == "":
		return fmt.Errorf("%s has nothing after its scheme", usertext.Quote(s))
	case strings.ContainsAny(s, " \t\n"):
		return fmt.Errorf("%s holds white space", usertext.Quote(s))
	}
	return nil
}
