package provider

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// TestAccStoreInAUserFolder: a local store whose directory holds files of
// the user's (.ssh/id_rsa, Documents/a.txt) and no store identity is
// refused at plan, naming the setting, the directory, some of the files
// and what to do; nothing is written (no gc/store.json, which would make
// the collector take the folder for a store) and the files are as they
// were. Once the folder is empty, the same configuration applies.
func TestAccStoreInAUserFolder(t *testing.T) {
	e := newEnv(t)
	e.write(siteFiles)
	user := map[string]string{".ssh/id_rsa": "-----BEGIN KEY-----\n", "Documents/a.txt": "notes\n"}
	for name, data := range user {
		p := filepath.Join(e.store, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, []byte(data), 0o600))
	}
	untouched := func() {
		t.Helper()
		if _, err := os.Stat(filepath.Join(e.store, filepath.FromSlash(store.IdentityKey))); !os.IsNotExist(err) {
			t.Fatalf("%s written into the user's folder (stat: %v)", store.IdentityKey, err)
		}
		var found []string
		must(t, filepath.WalkDir(e.store, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(e.store, p)
				found = append(found, filepath.ToSlash(rel))
				data, rerr := os.ReadFile(p)
				if rerr != nil || string(data) != user[filepath.ToSlash(rel)] {
					t.Errorf("%s changed or added: %q (%v)", rel, data, rerr)
				}
			}
			return err
		}))
		if len(found) != len(user) {
			t.Fatalf("the folder holds %v, want only %d files of the user's", found, len(user))
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: e.artifactConfig(e.dir),
				ExpectError: regexp.MustCompile(`(?s)Store directory holds other files.*store = .*` + regexp.QuoteMeta(e.store) +
					`\s+is\s+not\s+a\s+store.*\.ssh/id_rsa,\s+Documents/a\.txt.*empty\s+or\s+new\s+directory.*--adopt-store`),
			},
			{
				PreConfig: func() {
					untouched()
					for _, dir := range []string{".ssh", "Documents"} {
						must(t, os.RemoveAll(filepath.Join(e.store, dir)))
					}
				},
				// An empty directory is a new store.
				Config: e.artifactConfig(e.dir),
				Check: func(*terraformState) error {
					_, err := os.Stat(filepath.Join(e.store, filepath.FromSlash(store.IdentityKey)))
					return err
				},
			},
		},
	})
}
