//go:build unix

package actioncache

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

func testSigner(t *testing.T) *signature.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestASignedRecordCarriesItsProvenance: with a signer, the record a run
// writes is signed: a SLSA v1 provenance whose first subject is the record
// (as the collector and readers identify it) and second the output, naming
// the step's command, environment, output, every input and tool by digest,
// the log, and the builder the step names. Without one, nothing is signed.
func TestASignedRecordCarriesItsProvenance(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	in := []byte("an input\n")
	inSum := digest.Bytes(in)
	if _, err := st.PutBlob(ctx, inSum, strings.NewReader(string(in))); err != nil {
		t.Fatal(err)
	}
	j := job(t, "cat in.txt > out; echo built", map[string]digest.Sum{"in.txt": inSum}, "out", "cat")
	j.Spec.Environment = map[string]string{"LANG": "C"}

	unsigned := j
	unsigned.Spec.Salt = "unsigned"
	if _, err := Realize(ctx, st, Step{Job: unsigned, Mode: ReadWrite}); err != nil {
		t.Fatal(err)
	}
	if keys, err := st.Backend().List(ctx, store.FamilySignature.Dir()); err != nil || len(keys) != 0 {
		t.Fatalf("an unsigned run wrote signatures %v (%v)", keys, err)
	}

	s := testSigner(t)
	const builder = "https://ci.example.com/runners/7"
	done, err := Realize(ctx, st, Step{Job: j, Mode: ReadWrite, Signer: s, BuilderID: builder})
	if err != nil {
		t.Fatal(err)
	}
	rec := done.Record
	key, sum := store.ActionKey(rec.Key), digest.Bytes(rec.Encode())
	envs, err := signature.ReadSignatures(ctx, st.Backend(), key, sum)
	if err != nil || len(envs) != 1 {
		t.Fatalf("signatures of %s: %d, %v; want 1", key, len(envs), err)
	}
	statement, err := signature.VerifyRecord(envs[0], []*signature.Verifier{s.Public()}, key, sum, signature.ProvenancePredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := signature.Verify(envs[0], []*signature.Verifier{testSigner(t).Public()}); err == nil {
		t.Error("verified with another key")
	}
	want := []signature.Subject{{Name: key, Digest: sum}, {Name: "out", Digest: rec.Output}}
	if got := statement.Subjects(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("subjects %v, want %v", got, want)
	}
	p, err := statement.Provenance()
	if err != nil {
		t.Fatal(err)
	}
	bd := p.BuildDefinition
	if bd.BuildType != BuildType || p.RunDetails.Builder.ID != builder {
		t.Errorf("buildType %q, builder %q", bd.BuildType, p.RunDetails.Builder.ID)
	}
	cmd, _ := bd.ExternalParameters["command"].([]any)
	env, _ := bd.ExternalParameters["environment"].(map[string]any)
	if len(cmd) != 3 || cmd[2] != "cat in.txt > out; echo built" || bd.ExternalParameters["output"] != "out" || env["LANG"] != EnvPart("LANG", "C").String() {
		t.Errorf("externalParameters %v", bd.ExternalParameters)
	}
	deps := map[string]string{}
	for _, d := range bd.ResolvedDependencies {
		deps[d.Name] = d.Digest["sha256"]
	}
	if len(deps) != 3 || deps["inputs/in.txt"] != inSum.Hex() || deps["tools/sh"] != j.Spec.Tools["sh"].Hex() || deps["tools/cat"] != j.Spec.Tools["cat"].Hex() {
		t.Errorf("resolvedDependencies %v", deps)
	}
	if bp := p.RunDetails.Byproducts; len(bp) != 1 || bp[0].Name != "log" || bp[0].Digest["sha256"] != rec.Log.Hex() {
		t.Errorf("byproducts %v", bp)
	}

	// A record stored already (another run's) is not signed by this one:
	// it did not produce it.
	other := testSigner(t)
	again := j
	again.Spec.Command = append([]string(nil), j.Spec.Command...)
	if _, _, err := Put(ctx, st, &Record{Key: rec.Key, Output: inSum, Type: TypeFile, Size: int64(len(in)), Files: 1, Log: rec.Log}, SignWith(other, &again.Spec, "")); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Backend().Exists(ctx, store.SignatureKey(sum, other.KeyID())); ok || err != nil {
		t.Errorf("signed a record found stored: %v %v", ok, err)
	}
}

// TestSignRecordRefusesAnotherStep: a record is signed only with the
// provenance of its own step.
func TestSignRecordRefusesAnotherStep(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	j := job(t, "echo x > out", nil, "out")
	done, err := Realize(ctx, st, Step{Job: j, Mode: ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	other := j.Spec
	other.Salt = "another step"
	if _, err := SignRecord(ctx, st, testSigner(t), &other, done.Record, ""); err == nil {
		t.Fatal("signed a record with another step's provenance")
	}
}

// TestProvenanceBuilderID: the builder is the one named, else the
// provider; it is in the provenance only, not in the record or its key.
func TestProvenanceBuilderID(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	j := job(t, "echo x > out", nil, "out")
	key := j.Spec.Key()
	a, err := Realize(ctx, st, Step{Job: j, Mode: ReadWrite, BuilderID: "https://ci.example.com/a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Realize(ctx, st, Step{Job: j, Mode: ReadWrite, BuilderID: "https://ci.example.com/b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Record.Key != key || b.Record.Key != key || string(a.Record.Encode()) != string(b.Record.Encode()) {
		t.Fatalf("the builder changed the record: %s, %s", a.Record.Encode(), b.Record.Encode())
	}
	for builder, want := range map[string]string{"": DefaultBuilderID, "urn:example:ci": "urn:example:ci"} {
		if got := Provenance(&j.Spec, a.Record, builder).RunDetails.Builder.ID; got != want {
			t.Errorf("builder %q: builder.id %q, want %q", builder, got, want)
		}
	}
}

// A variable's value never reaches the provenance, which whoever reads the
// store can read: it carries the variable's part of the build key.
func TestProvenanceHidesEnvironmentValues(t *testing.T) {
	spec := &Spec{Command: []string{"true"}, Output: "out", Environment: map[string]string{"TOKEN": "s3cr3t-token-value"}}
	rec := &Record{Key: spec.Key(), Output: digest.Bytes([]byte("out")), Log: digest.Bytes(nil)}
	b, err := signature.ProvenanceStatement([]signature.Subject{{Name: "actions/x", Digest: rec.Key}}, Provenance(spec, rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("the provenance carries an environment value: %s", b)
	}
	if want := `"TOKEN":"` + spec.Parts()[PartEnv+"TOKEN"].String() + `"`; !strings.Contains(string(b), want) {
		t.Fatalf("the provenance lacks %s: %s", want, b)
	}
}
