package examples

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stepCommands tells the example's steps apart by their commands.
var stepCommands = map[string]string{
	"proc_a": "cat a.conf", "image_a": "image-a.tar", "image_b": "go build", "proc_b": "tr a-z", "image_c": "image-c.tar",
}

// steps lists the build steps the provider ran during one CLI command,
// sorted, read from its log ("running a build step", logged before each
// run with the command).
func steps(t *testing.T, logFile string) []string {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ran []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "running a build step") {
			continue
		}
		name := "unknown step: " + l
		for step, cmd := range stepCommands {
			if strings.Contains(l, cmd) {
				name = step
			}
		}
		ran = append(ran, name)
	}
	slices.Sort(ran)
	return ran
}

// logged runs a CLI command with the provider's log in a file, and returns
// the steps it ran.
func logged(t *testing.T, dir, cfg string, args ...string) []string {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "tf.log")
	t.Setenv("TF_LOG_PROVIDER", "INFO")
	t.Setenv("TF_LOG_PATH", logFile)
	must(t, dir, cfg, args...)
	t.Setenv("TF_LOG_PROVIDER", "")
	t.Setenv("TF_LOG_PATH", "")
	return steps(t, logFile)
}

// TestAccBuildPipeline runs examples/build-pipeline as its comment says:
// every step once; an edit of config/a.conf runs proc_a, image_a and
// image_b only; undoing it runs nothing; a second working directory on
// the same store plans every output (and the Lambda zip's hash) known and
// runs nothing. The zip holds the bootstrap binary, for linux/arm64.
func TestAccBuildPipeline(t *testing.T) {
	cli(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the example builds a Go program: go is not on PATH")
	}
	cfg := mirror(t)
	root := t.TempDir()
	store := "file://" + filepath.Join(root, "store")
	dir := filepath.Join(root, "one")
	copyDir(t, "build-pipeline", dir)
	vars := []string{"-var", "store=" + store}
	apply := append([]string{"apply", "-input=false", "-auto-approve"}, vars...)
	must(t, dir, cfg, "init", "-input=false")

	all := []string{"image_a", "image_b", "image_c", "proc_a", "proc_b"}
	if ran := logged(t, dir, cfg, apply...); !slices.Equal(ran, all) {
		t.Fatalf("first apply ran %v, want %v", ran, all)
	}
	if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, vars...)...); code != 0 {
		t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
	}
	hash := output(t, dir, cfg, "lambda_source_code_hash")
	zipPath := output(t, dir, cfg, "lambda_zip")
	b, err := os.ReadFile(zipPath)
	mustDo(t, err)
	if sum := sha256.Sum256(b); base64.StdEncoding.EncodeToString(sum[:]) != hash {
		t.Fatalf("lambda_source_code_hash %s is not the hash of %s", hash, zipPath)
	}
	zr, err := zip.OpenReader(zipPath)
	mustDo(t, err)
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode()&0o111 == 0 {
		t.Fatalf("the zip holds %v, want one executable bootstrap", zr.File)
	}
	_ = zr.Close()

	conf := filepath.Join(dir, "config", "a.conf")
	orig, err := os.ReadFile(conf)
	mustDo(t, err)
	mustDo(t, os.WriteFile(conf, []byte("listen 9090\n"), 0o644))
	if ran := logged(t, dir, cfg, apply...); !slices.Equal(ran, []string{"image_a", "image_b", "proc_a"}) {
		t.Fatalf("after editing config/a.conf the apply ran %v", ran)
	}
	if output(t, dir, cfg, "release") != "images@1.0.1" {
		t.Fatal("the new images were not released as 1.0.1")
	}
	mustDo(t, os.WriteFile(conf, orig, 0o644))
	if ran := logged(t, dir, cfg, apply...); len(ran) != 0 {
		t.Fatalf("after undoing the edit the apply ran %v, want nothing", ran)
	}
	if output(t, dir, cfg, "release") != "images@1.0.0" || output(t, dir, cfg, "lambda_source_code_hash") != hash {
		t.Fatal("undoing the edit did not come back to 1.0.0's images")
	}

	// A fresh working directory on the same store.
	two := filepath.Join(root, "two")
	copyDir(t, "build-pipeline", two)
	must(t, two, cfg, "init", "-input=false")
	must(t, two, cfg, append([]string{"plan", "-input=false", "-out", "plan.bin"}, vars...)...)
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string        `json:"actions"`
				After   json.RawMessage `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
		OutputChanges map[string]struct {
			AfterUnknown bool `json:"after_unknown"`
		} `json:"output_changes"`
	}
	mustDo(t, json.Unmarshal([]byte(must(t, two, cfg, "show", "-json", "plan.bin")), &plan))
	builds := 0
	for _, rc := range plan.ResourceChanges {
		if !strings.HasPrefix(rc.Address, "immutable_build.") {
			continue
		}
		builds++
		var after struct {
			CacheHit *bool  `json:"cache_hit"`
			Digest   string `json:"digest"`
		}
		mustDo(t, json.Unmarshal(rc.Change.After, &after))
		if after.CacheHit == nil || !*after.CacheHit || !strings.HasPrefix(after.Digest, "sha256:") {
			t.Errorf("%s plans cache_hit %v digest %q, want a hit known at plan", rc.Address, after.CacheHit, after.Digest)
		}
	}
	if builds != len(all) {
		t.Fatalf("the plan holds %d builds", builds)
	}
	if plan.OutputChanges["lambda_source_code_hash"].AfterUnknown {
		t.Error("lambda_source_code_hash is not known at plan on a hit")
	}
	if ran := logged(t, two, cfg, "apply", "-input=false", "plan.bin"); len(ran) != 0 {
		t.Fatalf("the second working directory ran %v, want nothing", ran)
	}
	if output(t, two, cfg, "lambda_source_code_hash") != hash {
		t.Fatal("the second working directory got another zip")
	}
}
