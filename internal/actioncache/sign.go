package actioncache

// Signing: with a signer, the action record a run writes is signed through
// signature.SignRecord, like every record the provider writes. Its
// statement is a SLSA Provenance v1 whose first subject is the record
// itself (its key and the sha256 of its stored bytes: what readers and the
// collector identify it by) and whose second is the output.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// BuildType is the SLSA buildType of a step's provenance: what its
// externalParameters (command, environment, output, salt),
// internalParameters (platform, key) and resolvedDependencies ("inputs/"
// and "tools/" + name) mean. A change to their meaning is a new version.
const BuildType = "https://immutable-infra.dev/build/v1"

// DefaultBuilderID is the builder.id of a provenance when the caller names
// no builder (the provider's builder_id setting): the provider itself.
// The builder names who ran the step, not what it is: it is in the
// signature's provenance only, never in the record or its key, so
// builders with different IDs share one cache.
const DefaultBuilderID = "https://immutable-infra.dev/provider"

// PutOption changes how Put writes a record.
type PutOption func(*putOptions)

type putOptions struct {
	signer    *signature.Signer
	spec      *Spec
	builderID string
	held      bool
}

// Held tells Put that the caller holds the record's output and log
// already: it stored them itself, under its own leases (store.Hold), just
// before, as Run does. Put then writes no lease of its own (a file and
// its fsyncs, or a request, per step); it still checks that both are
// present before it writes the record.
func Held() PutOption {
	return func(o *putOptions) { o.held = true }
}

// SignWith signs the record Put writes with s, with a provenance of spec
// (the step the record is of) naming builderID ("": DefaultBuilderID) as
// its builder. A nil s signs nothing.
func SignWith(s *signature.Signer, spec *Spec, builderID string) PutOption {
	return func(o *putOptions) { o.signer, o.spec, o.builderID = s, spec, builderID }
}

// SignatureError is a record that was written but could not be signed:
// the record stands (write-once).
type SignatureError struct {
	Key string
	Err error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("the build record %s was written but not signed: %v", e.Key, e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// Provenance is the SLSA v1 provenance of the step spec that recorded r,
// run by the builder builderID ("": DefaultBuilderID).
func Provenance(spec *Spec, r *Record, builderID string) *signature.Provenance {
	// A variable's value may be a secret, and signatures are readable by
	// whoever reads the store: each is recorded as its part of the build
	// key (the sha256 of the netstring of name and value), from which the
	// key is still recomputed and a known value still checked.
	env := map[string]string{}
	for k, v := range spec.Environment {
		env[k] = EnvPart(k, v).String()
	}
	external := map[string]any{"command": spec.Command, "environment": env, "output": spec.Output}
	if spec.Salt != "" {
		external["salt"] = spec.Salt
	}
	if builderID == "" {
		builderID = DefaultBuilderID
	}
	p := signature.NewProvenance(BuildType, builderID, external)
	platform := spec.Platform
	if platform == "" {
		platform = Platform()
	}
	p.BuildDefinition.InternalParameters = map[string]any{"platform": platform, "key": r.Key.String()}
	for _, name := range slices.Sorted(maps.Keys(spec.Inputs)) {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
			signature.ResourceDescriptor{Name: "inputs/" + name, Digest: signature.SHA256(spec.Inputs[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(spec.Tools)) {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies,
			signature.ResourceDescriptor{Name: "tools/" + name, Digest: signature.SHA256(spec.Tools[name])})
	}
	p.RunDetails.Byproducts = []signature.ResourceDescriptor{{Name: "log", Digest: signature.SHA256(r.Log), MediaType: "text/plain"}}
	return p
}

// SignRecord signs the record r of spec, stored at store.ActionKey(r.Key),
// with s: a provenance statement (by the builder builderID, "":
// DefaultBuilderID) whose subjects are the record (first) and its output
// (named by spec.Output; a tree by its listing's digest), stored once
// beside the record (signature.SignRecord).
func SignRecord(ctx context.Context, st *store.Store, s *signature.Signer, spec *Spec, r *Record, builderID string) (*signature.Envelope, error) {
	if spec.Key() != r.Key {
		return nil, fmt.Errorf("the record is of the key %s, not of the step's %s", r.Key, spec.Key())
	}
	p := Provenance(spec, r, builderID)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	output := []signature.Subject{{Name: spec.Output, Digest: r.Output}}
	return signature.SignRecord(ctx, st.Backend(), s, store.ActionKey(r.Key), r.Encode(), signature.ProvenancePredicateType, p, output)
}

// sign signs r, just written, when the options carry a signer.
func (o putOptions) sign(ctx context.Context, st *store.Store, r *Record) error {
	if o.signer == nil {
		return nil
	}
	if _, err := SignRecord(ctx, st, o.signer, o.spec, r, o.builderID); err != nil {
		return &SignatureError{Key: store.ActionKey(r.Key) + " in " + st.String(), Err: err}
	}
	return nil
}
