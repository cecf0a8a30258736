// Package signcli is the signature commands of the provider's binary, run
// outside Terraform (a CI job, a release manager's shell):
//
//	terraform-provider-immutable verify   — check a signed record's signatures
//	terraform-provider-immutable sign     — countersign a record (an approval, a key rotation)
//	terraform-provider-immutable envelope — print its DSSE envelopes
//
// A record is a release version, a channel move, a yank entry or a build
// action record (target.go).
//
// Each exits 0 done, 1 failed (for verify: not signed by a trusted key),
// 2 bad usage, as `gc` does. The package has no dependency on Terraform.
package signcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/gc"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// Commands are the names main dispatches here.
var Commands = []string{"verify", "sign", "envelope"}

// Main runs `terraform-provider-immutable <cmd>` with args (after cmd) and
// returns the exit status.
func Main(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	switch cmd {
	case "verify":
		return verifyMain(ctx, args, stdout, stderr)
	case "sign":
		return signMain(ctx, args, stdout, stderr)
	case "envelope":
		return envelopeMain(ctx, args, stdout, stderr)
	}
	_, _ = fmt.Fprintf(stderr, "unknown command %q: give one of %s\n", cmd, strings.Join(Commands, ", "))
	return 2
}

// storeHelp says how the commands find the store and its credentials.
const storeHelp = storeurl.CLIHelp

// names are how store errors name the commands' own options.
func names(needs string) s3store.Names {
	return s3store.Names{
		Store:    "--store (or " + gc.EnvStore + ")",
		Endpoint: "--s3-endpoint (or AWS_ENDPOINT_URL_S3)",
		Profile:  "--s3-profile",
		Options:  "--s3-endpoint, --s3-region, --s3-profile and --s3-path-style",
		Settings: "--store and the --s3-* options",
		Needs:    needs,
		Attempts: "AWS_MAX_ATTEMPTS",
		Rerun:    "Running the command again is safe.",
	}
}

// command holds what every command shares: its flag set, the store
// options and the release it is about.
type command struct {
	name     string
	fs       *flag.FlagSet
	stderr   io.Writer
	storeURL string
	release  string
	target   targetFlags
	s3       s3store.Settings
}

func newCommand(name, usage, needs string, stderr io.Writer) *command {
	c := &command{name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError), stderr: stderr, s3: s3store.Settings{Names: names(needs)}}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		_, _ = fmt.Fprint(stderr, usage) // nothing to do if stderr is gone
		c.fs.PrintDefaults()
	}
	c.fs.StringVar(&c.storeURL, "store", "", "the store's URL (file://DIR, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX); default $"+gc.EnvStore)
	c.fs.StringVar(&c.release, "release", "", "the release version, as `NAME@VERSION` (web@1.4.0)")
	c.addTargetFlags()
	c.fs.StringVar(&c.s3.Endpoint, "s3-endpoint", "", "S3 endpoint `URL` of an S3-compatible store (default: AWS, or $AWS_ENDPOINT_URL_S3)")
	c.fs.StringVar(&c.s3.Region, "s3-region", "", "S3 `region` (default: $AWS_REGION)")
	c.fs.StringVar(&c.s3.Profile, "s3-profile", "", "AWS `profile` (default: $AWS_PROFILE)")
	c.fs.BoolVar(&c.s3.UsePathStyle, "s3-path-style", false, "address the bucket in the path (most S3-compatible servers)")
	return c
}

// usageError is bad usage: the message, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// parse parses args; done is set (with the exit status) when the command
// should stop: help asked for, or bad flags.
func (c *command) parse(args []string) (code int, done bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if c.fs.NArg() > 0 {
		c.fail(usagef("unexpected argument %q; options start with --", c.fs.Arg(0)))
		return 2, true
	}
	return 0, false
}

// fail prints err and returns its exit status: 2 for a *usageError, 1
// otherwise.
func (c *command) fail(err error) int {
	_, _ = fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err)
	if errors.As(err, new(*usageError)) {
		return 2
	}
	return 1
}

// nameVersion checks --release.
func (c *command) nameVersion(required bool) (name, version string, err error) {
	if c.release == "" {
		if !required {
			return "", "", nil
		}
		return "", "", usagef("no release: give --release NAME@VERSION, such as web@1.4.0")
	}
	name, version, ok := strings.Cut(c.release, "@")
	if !ok {
		return "", "", usagef("--release %q has no version: write NAME@VERSION, such as web@1.4.0", c.release)
	}
	if err := release.CheckName(name); err != nil {
		return "", "", usagef("--release %q: %v", c.release, err)
	}
	if _, err := versions.Parse(version); err != nil {
		return "", "", usagef("--release %q: %v", c.release, err)
	}
	return name, version, nil
}

// open opens the store, contacting nothing.
func (c *command) open(ctx context.Context) (store.Backend, error) {
	raw := c.storeURL
	if raw == "" {
		raw = os.Getenv(gc.EnvStore)
	}
	if raw == "" {
		return nil, usagef("no store: give --store URL (such as s3://bucket/prefix or file:///var/lib/immutable) or set %s", gc.EnvStore)
	}
	if strings.HasPrefix(raw, "s3://") {
		if name, value := s3store.EndpointSource("--s3-endpoint", c.s3.Endpoint); value != "" {
			if err := s3store.CheckEndpoint(name, value); err != nil {
				return nil, &usageError{err.Error()}
			}
		}
	}
	st, err := storeurl.Open(ctx, raw, storeurl.Options{S3: c.s3, GCS: gcsstore.Settings{Names: gcsstore.Names{Store: c.s3.Names.Or().Store, Rerun: c.s3.Names.Or().Rerun}}})
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if dir, ok := strings.CutPrefix(st.String(), "file://"); ok {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, usagef("the store %s is not a directory: check --store", st)
		}
	}
	return st.Backend(), nil
}

// readFile reads a key file named by a flag; a file that cannot be read
// is bad usage.
func readFile(flagName, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s %s: %v", flagName, path, err)
	}
	return b, nil
}

// recordError says what a failed read of a version's record means.
func recordError(name, version string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s@%s is not published in this store (no %s): check --release and --store", name, version, release.VersionKey(name, version))
	}
	return err
}
