package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
)

// protoV6 runs the provider inside the test process. Under
// plugin-testing, relative paths would resolve against this package's
// directory: every test uses absolute temp paths and an explicit store.
var protoV6 = map[string]func() (tfprotov6.ProviderServer, error){
	"immutable": providerserver.NewProtocol6WithError(New("test")()),
}

// env is one test's private world: a store and a directory for sources.
type env struct {
	t     *testing.T
	store string // directory of the file:// store
	dir   string // where sources live
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make test does both, with the pinned OpenTofu)")
	}
	root := t.TempDir()
	return &env{t: t, store: filepath.Join(root, "store"), dir: filepath.Join(root, "src")}
}

// providerBlock configures the provider on the env's store.
func (e *env) providerBlock(extra ...string) string {
	return fmt.Sprintf("provider \"immutable\" {\n  store = %q\n  %s\n}\n", "file://"+e.store, strings.Join(extra, "\n  "))
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
		os.Chmod(p, mode)
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
	b, err := filestore.New(e.store)
	if err != nil {
		e.t.Fatal(err)
	}
	return store.New(b)
}

type (
	terraformState = terraform.State
	diagnostics    = diag.Diagnostics
)
