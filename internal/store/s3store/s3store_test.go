package s3store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storetest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

func TestConformance(t *testing.T) {
	srv := testserver.StartS3(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Backend {
			b, err := s3store.New(context.Background(), srv.NewBucket(t), "some/prefix", srv.Settings())
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Tamper: func(t *testing.T, b store.Backend, key string, data []byte) {
			sb := b.(*s3store.Backend)
			_, err := sb.Client().PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(sb.Bucket()), Key: aws.String(sb.ObjectKey(key)), Body: bytes.NewReader(data),
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	})
}
