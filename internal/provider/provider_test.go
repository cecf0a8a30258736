package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// protoV6 runs the provider inside the test process. Under
// plugin-testing, relative paths would resolve against this package's
// directory: every test uses absolute temp paths and an explicit store.
var protoV6 = map[string]func() (tfprotov6.ProviderServer, error){
	"immutable": providerserver.NewProtocol6WithError(New("test")()),
}

// env is one test's private world: a store and a directory for sources.
type env struct {
	t        *testing.T
	store    string          // directory of a file:// store
	s3       *testserver.S3  // the server of an s3:// store, else nil
	gcs      *testserver.GCS // the server of a gs:// store, else nil
	bucket   string
	endpoint string // overrides the server's endpoint in the config
	dir      string // where sources live
	// container is the container of an azblob:// store on the process's
	// Azurite (provider_azblob_test.go), else "".
	container string
}

func requireAcc(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make test does both, with the pinned OpenTofu)")
	}
}

// sharedGCS is the fake-gcs-server every gs:// test of the process uses
// (each in buckets of its own), started by TestMain when acceptance tests
// run and FAKE_GCS_SERVER_PATH names one; nil otherwise.
var sharedGCS *testserver.GCS

// TestMain sets, once for the process, what every acceptance test shares,
// so that tests can run in parallel (t.Setenv cannot): the stat cache in a
// private directory, not the user's, the S3 test servers' credentials, and
// STORAGE_EMULATOR_HOST, pointing the gs:// backend at sharedGCS,
// and a CLI configuration file that exists (useExistingCLIConfig).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "immutable-statcache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliDir, err := os.MkdirTemp("", "immutable-cliconfig-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := errors.Join(os.Setenv(statcache.EnvDir, dir), testserver.UseRootCredentials(), useExistingCLIConfig(cliDir)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin := os.Getenv(testserver.EnvFakeGCS); bin != "" && os.Getenv("TF_ACC") != "" {
		sharedGCS, err = testserver.LaunchGCS(bin, dir)
		if err == nil {
			err = os.Setenv(gcsstore.EnvEmulator, sharedGCS.Endpoint)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stopAzurite()
	if sharedGCS != nil {
		sharedGCS.Stop()
	}
	_ = os.RemoveAll(dir) // cleanup only: the tests have run
	_ = os.RemoveAll(cliDir)
	os.Exit(code)
}

// useExistingCLIConfig points TF_CLI_CONFIG_FILE (or its older name
// TERRAFORM_CONFIG, which the CLI reads when the first is unset) at an
// empty file in dir when it names a file that does not exist, as it does
// on a machine or CI runner that exports it for a configuration it never
// wrote. OpenTofu 1.12 then prints "Unable to open CLI configuration file"
// as a warning on stdout before every command's output (1.10 printed it on
// stderr), and plugin-testing, which parses `tofu version -json` and
// `tofu show -json` from stdout, fails before the first step. An empty file
// means to the CLI what the missing one did: no settings, and the default
// configuration files not read either. A variable that is unset, or names
// a file that exists (a user's plugin cache, a mirror), is left alone.
func useExistingCLIConfig(dir string) error {
	name := "TF_CLI_CONFIG_FILE"
	path := os.Getenv(name)
	if path == "" {
		name = "TERRAFORM_CONFIG"
		path = os.Getenv(name)
	}
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or unreadable: the CLI says why, as it would to the user
	}
	empty := filepath.Join(dir, "empty.tfrc")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return fmt.Errorf("%s names %s, which does not exist, and the empty CLI configuration for the tests could not be written: %w", name, path, err)
	}
	return os.Setenv(name, empty)
}

// newEnv is an env on a local store.
func newEnv(t *testing.T) *env {
	t.Helper()
	requireAcc(t)
	root := t.TempDir()
	return &env{t: t, store: filepath.Join(root, "store"), dir: filepath.Join(root, "src")}
}

// forEachStore runs a test on the local store and on an S3 store served
// by a real versitygw.
func forEachStore(t *testing.T, test func(t *testing.T, e *env)) {
	requireAcc(t)
	t.Run("file", func(t *testing.T) { test(t, newEnv(t)) })
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		e := &env{t: t, s3: srv, bucket: srv.NewBucket(t), dir: filepath.Join(t.TempDir(), "src")}
		test(t, e)
	})
}

// forEveryStore runs a test as forEachStoreAndAzure does, and then on a
// gs:// store (runGCS). Every test that holds on any backend uses it; the
// others assume that a store not on S3 is local (the s3_* attributes,
// request counts through the S3 proxy).
func forEveryStore(t *testing.T, test func(t *testing.T, e *env)) {
	forEachStoreAndAzure(t, test)
	runGCS(t, test)
}

// runGCS runs a test on a gs:// store served by fake-gcs-server
// (sharedGCS), in a bucket of its own.
func runGCS(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("gs", func(t *testing.T) {
		if sharedGCS == nil {
			testserver.GCSPath(t) // skips, or under CI fails, without one
			t.Fatal(testserver.EnvFakeGCS + " is set, and TestMain started no fake-gcs-server: TF_ACC was unset when it ran")
		}
		e := &env{t: t, gcs: sharedGCS, bucket: sharedGCS.NewBucket(t), dir: filepath.Join(t.TempDir(), "src")}
		test(t, e)
	})
}

// storeURL is the env's store as the provider setting names it.
func (e *env) storeURL() string {
	if e.container != "" {
		return "azblob://" + testserver.AzuriteAccount + "/" + e.container + "/team/releases"
	}
	switch {
	case e.s3 != nil:
		return "s3://" + e.bucket + "/team/releases"
	case e.gcs != nil:
		return "gs://" + e.bucket + "/team/releases"
	}
	return "file://" + e.store
}

// providerBlock configures the provider on the env's store.
func (e *env) providerBlock(extra ...string) string {
	s3 := ""
	if e.s3 != nil {
		endpoint := e.s3.Endpoint
		if e.endpoint != "" {
			endpoint = e.endpoint
		}
		s3 = fmt.Sprintf("s3 {\n    endpoint       = %q\n    region         = %q\n    use_path_style = true\n  }", endpoint, e.s3.Region)
	}
	return fmt.Sprintf("provider \"immutable\" {\n  store = %q\n  %s\n  %s\n}\n", e.storeURL(), strings.Join(extra, "\n  "), s3)
}

// write creates files under the env's source dir: name → content, as in
// the digest tests (trailing "*" = executable).
func (e *env) write(files map[string]string) {
	e.t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(e.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			e.t.Fatal(err)
		}
	}
}

// digestOf is the spec digest of a directory, computed outside Terraform.
func digestOf(t *testing.T, dir string) string {
	t.Helper()
	m, err := digest.HashTree(context.Background(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Digest().String()
}

func (e *env) backend() *store.Store {
	var opts storeurl.Options
	if e.s3 != nil {
		opts.S3 = e.s3.Settings()
	}
	st, err := storeurl.Open(context.Background(), e.storeURL(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// s3Backend is the backend of the env's S3 store.
func (e *env) s3Backend() *s3store.Backend {
	e.t.Helper()
	bk := e.backend().Backend()
	b, ok := bk.(*s3store.Backend)
	if !ok {
		e.t.Fatalf("the store's backend is a %T, not an *s3store.Backend", bk)
	}
	return b
}

// deleteKeys removes objects behind the store's back, as an operator or
// a lifecycle rule might.
func (e *env) deleteKeys(prefix string) {
	e.t.Helper()
	if e.gcs != nil || e.container != "" {
		bk := e.backend().Backend()
		b, ok := bk.(store.Deleter)
		if !ok {
			e.t.Fatalf("%s cannot delete", e.storeURL())
		}
		keys, err := bk.List(context.Background(), prefix)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, k := range keys {
			if err := b.Delete(context.Background(), k); err != nil {
				e.t.Fatal(err)
			}
		}
		return
	}
	if e.s3 == nil {
		if err := os.RemoveAll(filepath.Join(e.store, filepath.FromSlash(prefix))); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	b := e.s3Backend()
	keys, err := b.List(context.Background(), prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := b.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b.Bucket()), Key: aws.String(b.ObjectKey(k))}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// tamper overwrites an object behind the store's back.
func (e *env) tamper(key string, data []byte) {
	e.t.Helper()
	if e.container != "" {
		// Overwriting needs an unconditional write the azblob backend
		// never makes; a test that needs it on Azure writes it here first.
		e.t.Fatalf("tamper is not written for azblob stores (%s)", e.storeURL())
	}
	if e.gcs != nil {
		e.gcs.Put(e.t, e.bucket, "team/releases/"+key, data)
		return
	}
	if e.s3 == nil {
		p := filepath.Join(e.store, filepath.FromSlash(key))
		if err := os.Chmod(p, 0o644); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	b := e.s3Backend()
	if _, err := b.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.Bucket()), Key: aws.String(b.ObjectKey(key)), Body: bytes.NewReader(data)}); err != nil {
		e.t.Fatal(err)
	}
}

// read returns an object's bytes.
func (e *env) read(key string) []byte {
	e.t.Helper()
	rc, err := e.backend().Backend().Open(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = rc.Close() }() // read-only: nothing to lose
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

type (
	terraformState = terraform.State
	diagnostics    = diag.Diagnostics
)
