package gc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
)

// EnvStore is the environment variable the provider reads its store from;
// the command reads it too, so that a CI job configures both alike.
const EnvStore = "IMMUTABLE_STORE"

const usage = `Usage: terraform-provider-immutable gc --store URL [options]

Deletes the release versions outside the retention policy and every object
in the store that no kept version, recent object or running writer needs.
Safe to run while others publish. Nothing is deleted with --dry-run.

A kept version keeps its artifacts and, for each of its images that
immutable_image built, the image's record with its manifest, config and
layer trees. An image record no kept version names goes like an artifact
no kept version names: once it is older than --grace and no writer holds
it.

` + storeurl.CLIHelp + `The collector deletes, which nothing else should be allowed to: it needs
s3:DeleteObject on S3, storage.objects.delete on Cloud Storage, and on Azure
the role Storage Blob Data Contributor (or a custom role with delete).

Durations are Go durations (36h, 90m) or days (30d).

Options:
`

// names are how store errors name the command's own options.
var names = s3store.Names{
	Store:    "--store (or " + EnvStore + ")",
	Endpoint: "--s3-endpoint (or AWS_ENDPOINT_URL_S3)",
	Profile:  "--s3-profile",
	Options:  "--s3-endpoint, --s3-region, --s3-profile and --s3-path-style",
	Settings: "--store and the --s3-* options",
	Needs:    "The collector needs s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the store's prefix (see the S3 guide).",
	Attempts: "AWS_MAX_ATTEMPTS",
	Rerun: "Running the collection again is safe: the store is consistent after every delete, and the next run picks up " +
		"what this one left.",
}

// azureNames are the collector's, for an azblob:// store.
var azureNames = azstore.Names{
	Store: names.Store,
	Needs: "The collector needs read, write, list and delete on the container's blobs: Storage Blob Data Contributor " +
		"(see the guide \"Sharing releases on Google Cloud and Azure\").",
	Rerun: names.Rerun,
}

// fileNames are the collector's, for a file:// store.
var fileNames = filestore.Names{Store: names.Store, User: "the user running gc",
	Full: "free some space there (the collector deletes what needs none first, then a few KiB at a time), then run gc again"}

// durationFlag is a flag.Value taking "30d" besides Go durations.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d%(24*time.Hour) == 0 && *f.d != 0 {
		return strconv.FormatInt(int64(*f.d/(24*time.Hour)), 10) + "d"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number of days", s)
		}
		if n > 100*365 {
			return fmt.Errorf("%q is over a hundred years", s)
		}
		*f.d = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 36h or 30d", s)
	}
	*f.d = d
	return nil
}

// Main runs `terraform-provider-immutable gc` with args (after "gc") and
// returns the exit status: 0 done, 1 failed, 2 bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprint(stderr, usage) // nothing to do if stderr is gone
		fs.PrintDefaults()
	}
	p := DefaultPolicy()
	var (
		storeURL = fs.String("store", "", "the store's URL (file://DIR, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX); default $"+EnvStore)
		dryRun   = fs.Bool("dry-run", false, "report what would be deleted, and delete nothing")
		verbose  = fs.Bool("v", false, "print each step")
		batch    = fs.Int("batch-size", 1000, "delete at most `N` objects under one marker (each batch must finish within "+(store.MarkerTTL/2).String()+")")
		empty    = fs.Bool("allow-empty", false, "collect a store that holds nothing (by default an empty store is an error: a mistyped --store)")
		adopt    = fs.Bool("adopt-store", false, "write the store's identity ("+store.IdentityKey+") into a store an earlier version of the provider wrote, "+
			"once every key there is found to be the store's (without it, a store without one is refused as no store)")
		s3 = s3store.Settings{Names: names}
	)
	fs.IntVar(&p.KeepLast, "keep-last", p.KeepLast, "keep the `N` highest versions of each release that are not yanked")
	fs.Var(durationFlag{&p.KeepWithin}, "keep-within", "keep every version published within this `duration`")
	fs.IntVar(&p.KeepChannelMoves, "keep-channel-moves", p.KeepChannelMoves, "keep every version a channel pointed to in its last `N` moves")
	fs.Var(durationFlag{&p.KeepYankedFor}, "keep-yanked-for", "keep a yanked version this `duration` after its yank")
	fs.Var(durationFlag{&p.Grace}, "grace", "keep every object stored within this `duration`, and all it references (at least the lease time, "+store.LeaseTTL.String()+")")
	fs.StringVar(&s3.Endpoint, "s3-endpoint", "", "S3 endpoint `URL` of an S3-compatible store (default: AWS, or $AWS_ENDPOINT_URL_S3)")
	fs.StringVar(&s3.Region, "s3-region", "", "S3 `region` (default: $AWS_REGION)")
	fs.StringVar(&s3.Profile, "s3-profile", "", "AWS `profile` (default: $AWS_PROFILE)")
	fs.BoolVar(&s3.UsePathStyle, "s3-path-style", false, "address the bucket in the path (most S3-compatible servers)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "gc: unexpected argument %q; options start with --\n", fs.Arg(0))
		return 2
	}
	raw := *storeURL
	if raw == "" {
		raw = os.Getenv(EnvStore)
	}
	if raw == "" {
		_, _ = fmt.Fprintf(stderr, "gc: no store: give --store URL (such as s3://bucket/prefix or file:///var/lib/immutable) or set %s. "+
			"The collector never guesses a store: the provider's default, file://.immutable, depends on the directory it runs in\n", EnvStore)
		return 2
	}
	if err := p.Check(); err != nil {
		_, _ = fmt.Fprintf(stderr, "gc: %v\n", err)
		return 2
	}
	if err := checkEndpoint(s3.Endpoint, raw); err != nil {
		_, _ = fmt.Fprintf(stderr, "gc: %v\n", err)
		return 2
	}
	st, err := storeurl.Open(ctx, raw, storeurl.Options{
		File: fileNames, S3: s3, Azure: azstore.Settings{Names: azureNames},
		GCS: gcsstore.Settings{Names: gcsstore.Names{Store: names.Store, Rerun: names.Rerun}},
	})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "gc: %v\n", err)
		return 2
	}
	if fi, err := os.Stat(strings.TrimPrefix(st.String(), "file://")); strings.HasPrefix(st.String(), "file://") && (err != nil || !fi.IsDir()) {
		_, _ = fmt.Fprintf(stderr, "gc: the store %s is not a directory: check --store\n", st)
		return 2
	}
	if *batch < 1 || *batch > 100_000 {
		_, _ = fmt.Fprintf(stderr, "gc: --batch-size %d: give a number from 1 to 100000\n", *batch)
		return 2
	}
	o := Options{DryRun: *dryRun, BatchSize: *batch, AllowEmpty: *empty, Adopt: *adopt, Warn: stderr}
	if *verbose {
		o.Log = stderr
	}
	report, err := Collect(ctx, st, p, o)
	if errors.As(err, new(*NotAStoreError)) {
		_, _ = fmt.Fprintf(stderr, "gc: %v\n", err)
		return 2
	}
	if report != nil && !errors.As(err, new(*EmptyError)) {
		if _, werr := fmt.Fprint(stdout, report.String()); werr != nil && err == nil {
			err = fmt.Errorf("writing the report: %w", werr)
		}
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "gc: %v\n", err)
		return 1
	}
	return 0
}

// checkEndpoint checks the S3 endpoint an s3:// store is reached at, from
// --s3-endpoint or the environment, before anything is sent: the AWS SDK
// takes one without a scheme and fails only at the first request.
func checkEndpoint(flag, storeURL string) error {
	if !strings.HasPrefix(storeURL, "s3://") {
		return nil
	}
	if name, value := s3store.EndpointSource("--s3-endpoint", flag); value != "" {
		return s3store.CheckEndpoint(name, value)
	}
	return nil
}
