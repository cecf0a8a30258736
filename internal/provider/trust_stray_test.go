package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// plant stores an object at key behind the store's back, whatever its
// name: what a writer of the bucket without the provider can put there.
func (e *env) plant(key string, data []byte) {
	e.t.Helper()
	if e.gcs != nil || e.container != "" {
		e.t.Fatalf("plant is written for file:// and s3:// stores only (%s)", e.storeURL())
	}
	if e.s3 == nil {
		p := filepath.Join(e.store, filepath.FromSlash(key))
		must(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(e.t, os.WriteFile(p, data, 0o644))
		return
	}
	b := e.s3Backend()
	_, err := b.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.Bucket()), Key: aws.String(b.ObjectKey(key)), Body: bytes.NewReader(data)})
	must(e.t, err)
}

// evilName is an object name holding characters that would reorder or
// recolour a terminal's text: an escape sequence (on the file store; S3
// listings are XML, which cannot carry it) and a right-to-left override.
func (e *env) evilName() string {
	if e.s3 == nil {
		return "\x1b[31mEVIL\x1b[0m\u202e"
	}
	return "EVIL\u202e"
}

// TestAccTrust_strayObjects: objects stored among a record's signatures
// that are not signatures (a name that is no key ID, a file that is no
// envelope) hide not a trusted key's valid signature beside them: the
// record reads under require_signatures. A record without a valid
// signature is refused naming them, quoted so that their characters
// cannot reorder the message, and saying they are not signatures to
// delete or ignore. They refused the record for good, and were printed raw.
func TestAccTrust_strayObjects(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.backend().Backend()
		// A store (written behind the provider's back here): one without
		// its identity that holds stray objects is no store to start.
		must(t, store.WriteIdentity(ctx, b))
		_, ci := writeSigningKey(t, t.TempDir())
		_, rogue := writeSigningKey(t, t.TempDir())
		ciPub := writePublicKey(t, t.TempDir(), "ci.pub", ci)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		publish := func(version string) (string, digest.Sum) {
			_, err := release.WriteRecord(ctx, b, &release.Record{Name: "web", Version: version}, now)
			must(t, err)
			key := store.VersionKey("web", version)
			return key, digest.Bytes(e.read(key))
		}

		good, goodSum := publish("1.0.0")
		_, err := release.SignRecord(ctx, b, ci, good, e.read(good), release.KindRelease, nil)
		must(t, err)
		e.plant(store.SignaturesPrefix(goodSum)+"zzzz", []byte("junk\n"))
		e.plant(store.SignaturesPrefix(goodSum)+e.evilName(), []byte("junk\n"))
		e.plant(store.SignatureKey(goodSum, rogue.KeyID()), []byte("not an envelope"))

		bad, badSum := publish("2.0.0")
		_, err = release.SignRecord(ctx, b, rogue, bad, e.read(bad), release.KindRelease, nil)
		must(t, err)
		e.plant(store.SignaturesPrefix(badSum)+e.evilName(), []byte("junk\n"))

		// Beside 2.0.0, an envelope whose keyid is no key ID; 3.0.0
		// carries CI's signature of a statement about a record whose name
		// holds a right-to-left override.
		_, other := writeSigningKey(t, t.TempDir())
		env, err := release.SignRecord(ctx, b, other, good, e.read(good), release.KindRelease, nil)
		must(t, err)
		env.Signatures[0].KeyID = "EVIL\u202eID"
		body, err := json.Marshal(env)
		must(t, err)
		e.plant(store.SignatureKey(badSum, other.KeyID()), body)
		about, aboutSum := publish("3.0.0")
		st, err := signature.NewStatement([]signature.Subject{{Name: good + "\u202e", Digest: goodSum}}, release.RecordPredicateType, release.RecordPredicate{Kind: release.KindRelease})
		must(t, err)
		env, err = signature.Sign(ci, st)
		must(t, err)
		body, err = json.Marshal(env)
		must(t, err)
		e.plant(store.SignatureKey(aboutSum, ci.KeyID()), body)

		// An envelope whose keyid is not the key ID it is stored under is a
		// stray object; its keyid is quoted.
		evilID, rogueID := `names\s+key\s+ID\s+`+regexp.QuoteMeta(`"EVIL\u202eID"`), regexp.QuoteMeta(rogue.KeyID())
		quoted := `EVIL[^\s]*` + regexp.QuoteMeta(`\u202E"`)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: e.providerBlock(trustBlockConfig(true, ciPub)) + readRelease("1.0.0"),
					Check:  resource.TestCheckResourceAttr("data.immutable_release.r", "resolved_version", "1.0.0"),
				},
				{
					Config: e.providerBlock(trustBlockConfig(true, ciPub)) + readRelease("2.0.0"),
					ExpectError: regexp.MustCompile(`(?s)Untrusted record.*` + regexp.QuoteMeta(bad) + `.*key\s+IDs\s+` + rogueID + `\.\s+Stored` +
						`.*(` + evilID + `.*` + quoted + `\s+is\s+not\s+a\s+signature|` + quoted + `\s+is\s+not\s+a\s+signature.*` + evilID + `)` + // in key order
						`.*not\s+signatures.*delete\s+the\s+stray\s+objects`),
				},
				{
					Config:      e.providerBlock(trustBlockConfig(true, ciPub)) + readRelease("3.0.0"),
					ExpectError: regexp.MustCompile(`(?s)Untrusted record.*` + regexp.QuoteMeta(about) + `.*but\s+about\s+` + regexp.QuoteMeta(`"`+good+`\u202E"`)),
				},
			},
		})
	})
}
