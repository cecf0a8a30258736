// Package testserver starts a real S3-compatible server for tests:
// versitygw (Apache-2.0) with its posix backend in a temp dir, on
// 127.0.0.1. The binary comes from VERSITYGW_PATH, which `make test` sets
// from scripts/versitygw.sh (built once from the Go module proxy).
package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
)

// EnvBinary names the variable that holds the versitygw binary's path.
const EnvBinary = "VERSITYGW_PATH"

// S3 is a running versitygw.
type S3 struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string

	t       testing.TB
	bin     string
	root    string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited; waitErr is then set
	waitErr error
	buckets atomic.Int64
}

// Available reports whether a versitygw binary is configured.
func Available() bool { return os.Getenv(EnvBinary) != "" }

// StartS3 starts a server for the test and stops it when the test ends.
// Without VERSITYGW_PATH the test is skipped, saying how to run it.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		t.Skip("S3 test: set " + EnvBinary + " to a versitygw binary (make test builds one with scripts/versitygw.sh)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // frees the port for the server
		t.Fatal(err)
	}
	s := &S3{
		AccessKey: rootAccessKey, SecretKey: rootSecretKey, Region: rootRegion,
		t: t, bin: bin, root: filepath.Join(t.TempDir(), "gwroot"), addr: addr, Endpoint: "http://" + addr,
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts (or restarts) the server on the same address and data.
func (s *S3) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	iam := filepath.Join(filepath.Dir(s.root), "iam")
	if err := os.MkdirAll(iam, 0o755); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region, "--iam-dir", iam, "--quiet", "posix", s.root)
	logf, err := os.Create(filepath.Join(filepath.Dir(s.root), fmt.Sprintf("versitygw-%d.log", time.Now().UnixNano())))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		_ = logf.Close() // the server wrote it; nothing buffered here
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	// Wait until it listens, until it exits (a crash fails the test at
	// once, with its log), or until the deadline.
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close() // only probed
			return
		}
		select {
		case <-exited:
			s.cmd = nil
			b, _ := os.ReadFile(logf.Name())
			s.t.Fatalf("versitygw exited before listening on %s (%v):\n%s", s.addr, s.waitErr, b)
		case <-deadline.C:
			s.Stop()
			b, _ := os.ReadFile(logf.Name())
			s.t.Fatalf("versitygw did not listen on %s within 20s:\n%s", s.addr, b)
		case <-tick.C:
		}
	}
}

// Stop kills the server, as a crash or an outage would.
func (s *S3) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // fails only if it already exited, which <-s.exited covers
	<-s.exited
	s.cmd = nil
}

// Root is the posix directory holding the buckets.
func (s *S3) Root() string { return s.root }

// Settings are the provider's s3 settings for this server.
func (s *S3) Settings() s3store.Settings {
	return s3store.Settings{Region: s.Region, Endpoint: s.Endpoint, UsePathStyle: true}
}

// rootEnv is the environment that gives the AWS SDK the test servers'
// root credentials (every server started here has the same) and nothing
// else: no profile, no shared files, no instance metadata service.
func rootEnv() [][2]string {
	return [][2]string{
		{"AWS_ACCESS_KEY_ID", rootAccessKey}, {"AWS_SECRET_ACCESS_KEY", rootSecretKey}, {"AWS_REGION", rootRegion},
		{"AWS_SESSION_TOKEN", ""}, {"AWS_PROFILE", ""}, {"AWS_CONFIG_FILE", os.DevNull},
		{"AWS_SHARED_CREDENTIALS_FILE", os.DevNull}, {"AWS_EC2_METADATA_DISABLED", "true"},
	}
}

// UseRootCredentials sets rootEnv for the whole process: a TestMain calls
// it once, so that tests needing the credentials can run in parallel
// (t.Setenv cannot be used in a parallel test).
func UseRootCredentials() error {
	for _, kv := range rootEnv() {
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// The root credentials and region of every test server.
const (
	rootAccessKey = "immutable-test-access"
	rootSecretKey = "immutable-test-secret-key"
	rootRegion    = "us-east-1"
)

// Env sets the AWS credentials of the server's root user for the test.
// Variables that already hold them (UseRootCredentials) are left alone, so
// a parallel test may call it.
func (s *S3) Env(t testing.TB) {
	for _, kv := range rootEnv() {
		if os.Getenv(kv[0]) != kv[1] {
			t.Setenv(kv[0], kv[1])
		}
	}
}

// NewBucket creates an empty bucket and returns its name.
func (s *S3) NewBucket(t testing.TB) string {
	t.Helper()
	s.Env(t)
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e9, s.buckets.Add(1))
	b, err := s3store.New(context.Background(), name, "", s.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// AddReader creates a user that may only read and list bucket (the least
// a plan needs) and returns its access key and secret.
func (s *S3) AddReader(t testing.TB, bucket string) (access, secret string) {
	t.Helper()
	return s.AddUser(t, bucket, "reader", map[string][]string{"": {"s3:GetObject", "s3:ListBucket"}})
}

// AddUser creates a user named name-bucket that may do, for each key
// prefix in allow ("" for the whole bucket), the actions listed for it,
// and returns its access key and secret. A policy replaces the bucket's
// previous one: one user per bucket.
func (s *S3) AddUser(t testing.TB, bucket, name string, allow map[string][]string) (access, secret string) {
	t.Helper()
	access, secret = name+"-"+bucket, name+"-secret-"+bucket
	out, err := exec.Command(s.bin, "admin", "--access", s.AccessKey, "--secret", s.SecretKey, "--endpoint-url", s.Endpoint,
		"create-user", "--access", access, "--secret", secret, "--role", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("creating the user %s: %v\n%s", access, err, out)
	}
	var statements []string
	for prefix, actions := range allow {
		quoted := make([]string, len(actions))
		for i, a := range actions {
			quoted[i] = fmt.Sprintf("%q", a)
		}
		statements = append(statements, fmt.Sprintf(`{"Effect":"Allow","Principal":{"AWS":[%q]},"Action":[%s],`+
			`"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/%s*"]}`, access, strings.Join(quoted, ","), bucket, bucket, prefix))
	}
	policy := `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
	s.Env(t)
	b, err := s3store.New(context.Background(), bucket, "", s.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatalf("granting read access: %v", err)
	}
	return access, secret
}

// NoCredentials removes every source of AWS credentials from the test's
// environment — variables, shared files, profiles, SSO, web identity,
// container and instance roles — so that the SDK finds none and sends
// nothing anywhere (in particular not to the instance metadata service).
func NoCredentials(t testing.TB) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	} {
		t.Setenv(k, "") // restored when the test ends
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}
