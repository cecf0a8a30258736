package s3store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// BenchmarkS3Publish is the S3 table of `make bench`: publishing a tree of
// 4 KiB files to versitygw behind a proxy that adds BENCH_S3_RTT (20 ms by
// default) to every request, against `mc mirror` of the same tree through
// the same proxy, in the same run. For each tree size (BENCH_S3_FILES,
// default "2000 10000"): the first publish into an empty bucket, and the
// publish after one file changed (with the previous listing known, as the
// provider knows it from state); mc mirror --overwrite the same two ways.
// Each row reports its requests (req/op) beside the time.
//
//	go test -run '^$' -bench S3Publish -benchtime 1x ./internal/store/s3store/
//
// MC_PATH names the mc binary (scripts/mc.sh builds it); without it the mc
// rows are skipped, saying so.
func BenchmarkS3Publish(b *testing.B) {
	rtt := 20 * time.Millisecond
	if v := os.Getenv("BENCH_S3_RTT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BENCH_S3_RTT=%q: %v", v, err)
		}
		rtt = d
	}
	sizes := strings.Fields(os.Getenv("BENCH_S3_FILES"))
	if len(sizes) == 0 {
		sizes = []string{"2000", "10000"}
	}
	srv := testserver.StartS3(b)
	proxy := srv.Proxy(b, rtt)
	settings := srv.Settings()
	settings.Endpoint = proxy.Endpoint
	ctx := context.Background()
	b.Logf("round trip added to every request: %v", rtt)

	for _, size := range sizes {
		n, err := strconv.Atoi(size)
		if err != nil {
			b.Fatalf("BENCH_S3_FILES: %q is not a number", size)
		}
		dir := b.TempDir()
		benchTree(b, dir, n)
		changed := filepath.Join(dir, "d000", "f0000000.bin")
		original, err := os.ReadFile(changed)
		if err != nil {
			b.Fatal(err)
		}
		edit := func(body []byte) {
			if err := os.WriteFile(changed, body, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		listing := func() *digest.Listing {
			m, err := digest.HashTree(ctx, dir, digest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return m
		}
		publish := func(bucket string, m *digest.Listing, known ...digest.Sum) {
			be, err := s3store.New(ctx, bucket, "", settings)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := store.New(be).Publish(ctx, dir, m, known...); err != nil {
				b.Fatal(err)
			}
		}
		report := func(b *testing.B) {
			b.ReportMetric(float64(len(proxy.Calls("", "")))/float64(b.N), "req/op")
		}

		b.Run(fmt.Sprintf("files=%d/immutable/first", n), func(b *testing.B) {
			m := listing()
			for range b.N {
				b.StopTimer()
				bucket := srv.NewBucket(b)
				proxy.Reset()
				b.StartTimer()
				publish(bucket, m)
			}
			b.StopTimer()
			report(b)
		})
		b.Run(fmt.Sprintf("files=%d/immutable/one-changed", n), func(b *testing.B) {
			m1 := listing()
			for range b.N {
				b.StopTimer()
				bucket := srv.NewBucket(b)
				publish(bucket, m1)
				edit([]byte("changed\n"))
				m2 := listing()
				proxy.Reset()
				b.StartTimer()
				publish(bucket, m2, m1.Digest())
				b.StopTimer()
				edit(original)
			}
			report(b)
		})

		mc := os.Getenv("MC_PATH")
		mirror := func(b *testing.B, bucket string) {
			cmd := exec.Command(mc, "--config-dir", b.TempDir(), "mirror", "--overwrite", "--quiet", dir, "bench/"+bucket)
			// The proxy's URL with the server's credentials: mc's own way
			// of naming a host without a config file.
			host := strings.Replace(proxy.Endpoint, "http://", "http://"+srv.AccessKey+":"+srv.SecretKey+"@", 1)
			cmd.Env = append(os.Environ(), "MC_HOST_bench="+host)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("mc mirror: %v\n%s", err, out)
			}
		}
		b.Run(fmt.Sprintf("files=%d/mc-mirror/first", n), func(b *testing.B) {
			if mc == "" {
				b.Skip("MC_PATH is not set: scripts/mc.sh builds mc from the Go module proxy; it could not here")
			}
			for range b.N {
				b.StopTimer()
				bucket := srv.NewBucket(b)
				proxy.Reset()
				b.StartTimer()
				mirror(b, bucket)
			}
			b.StopTimer()
			report(b)
		})
		b.Run(fmt.Sprintf("files=%d/mc-mirror/one-changed", n), func(b *testing.B) {
			if mc == "" {
				b.Skip("MC_PATH is not set: scripts/mc.sh builds mc from the Go module proxy; it could not here")
			}
			for range b.N {
				b.StopTimer()
				bucket := srv.NewBucket(b)
				mirror(b, bucket)
				edit([]byte("changed\n"))
				proxy.Reset()
				b.StartTimer()
				mirror(b, bucket)
				b.StopTimer()
				edit(original)
			}
			report(b)
		})
	}
}

// benchTree writes n files of 4 KiB, distinct, 100 to a directory.
func benchTree(b *testing.B, dir string, n int) {
	buf := make([]byte, 4096)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%07d.bin", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for j := range buf {
			buf[j] = byte(i*31 + j*7)
		}
		copy(buf, fmt.Sprintf("file %d\n", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
