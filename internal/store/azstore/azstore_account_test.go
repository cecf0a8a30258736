package azstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// otherAccount is a second account Azurite serves (AZURITE_ACCOUNTS), with
// a made-up key: a test account, no secret.
const (
	otherAccount = "otheracct"
	otherKey     = "b3RoZXJhY2N0IHRlc3Qga2V5IG5vdCBhIHNlY3JldA=="
)

// TestConnectionStringOfAnotherAccount: a SAS connection string whose
// blob endpoint is another account's (path-style, as Azurite serves) is
// refused, naming both accounts, and nothing is written into the other
// account; the same string opens the store of its own account.
func TestConnectionStringOfAnotherAccount(t *testing.T) {
	t.Setenv("AZURITE_ACCOUNTS", testserver.AzuriteAccount+":"+testserver.AzuriteKey+";"+otherAccount+":"+otherKey)
	srv := testserver.StartAzurite(t)
	ctx := context.Background()
	cred, err := azblob.NewSharedKeyCredential(otherAccount, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint + "/" + otherAccount
	const name = "rel"
	c, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("creating the container in %s: %v", otherAccount, err)
	}
	q, err := sas.AccountSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
		Permissions:   (&sas.AccountPermissions{Read: true, Write: true, Create: true, List: true}).String(),
		ResourceTypes: (&sas.AccountResourceTypes{Container: true, Object: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(azstore.ConnectionStringEnv, "BlobEndpoint="+endpoint+";SharedAccessSignature="+q.Encode())

	b, err := azstore.New(ctx, testserver.AzuriteAccount, name, "mix", azstore.Settings{})
	if err == nil {
		_ = b.Create(ctx, "blobs/x", strings.NewReader("x")) // what the old code did: written into otheracct
		t.Errorf("a connection string of %s opened a store in %s", otherAccount, testserver.AzuriteAccount)
	} else {
		for _, want := range []string{`points at the storage account "otheracct"`, `in the account "devstoreaccount1"`, azstore.ConnectionStringEnv} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
		if strings.Contains(err.Error(), "sig=") {
			t.Errorf("the error repeats the SAS: %v", err)
		}
	}
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			t.Errorf("%s/%s/%s was written, through a store that names %s", otherAccount, name, *it.Name, testserver.AzuriteAccount)
		}
	}

	// The same string, for its own account, works.
	ob, err := azstore.New(ctx, otherAccount, name, "mix", azstore.Settings{})
	if err != nil {
		t.Fatalf("the store of the connection string's own account: %v", err)
	}
	if err := ob.Create(ctx, "blobs/y", strings.NewReader("y")); err != nil {
		t.Fatalf("writing through a SAS of the store's own account: %v", err)
	}
}

// TestConnectionStringAccount: the account a connection string's blob
// endpoint serves (host-style on every Azure cloud, path-style on an IP
// or localhost) or its AccountName must be the store's; a custom domain
// needs a matching AccountName. Nothing is contacted.
func TestConnectionStringAccount(t *testing.T) {
	const sas = "SharedAccessSignature=sv=2024-01-01&sig=SECRETSIG"
	const key = "AccountKey=" + testserver.AzuriteKey
	for cs, want := range map[string]string{
		"BlobEndpoint=https://otheracct.blob.core.windows.net;" + sas:                         `points at the storage account "otheracct"`,
		"BlobEndpoint=https://otheracct.blob.core.chinacloudapi.cn/;" + sas:                   `points at the storage account "otheracct"`,
		"BlobEndpoint=https://OtherAcct.z12.blob.storage.azure.net;" + sas:                    `points at the storage account "otheracct"`,
		"BlobEndpoint=http://localhost:10000/otheracct;" + sas:                                `points at the storage account "otheracct"`,
		"AccountName=myacct;" + key + ";BlobEndpoint=https://otheracct.blob.core.windows.net": `points at the storage account "otheracct"`,
		"AccountName=otheracct;" + key + ";BlobEndpoint=https://myacct.blob.core.windows.net": `connection string of the storage account "otheracct"`,
		"AccountName=otheracct;" + key + ";EndpointSuffix=core.windows.net":                   `points at the storage account "otheracct"`,
		"BlobEndpoint=https://releases.example.com;" + sas:                                    "add AccountName=myacct",
		"AccountName=otheracct;" + key + ";BlobEndpoint=https://releases.example.com":         `connection string of the storage account "otheracct"`,
		"BlobEndpoint=https://myacct.blob.core.windows.net;" + sas:                            "",
		"BlobEndpoint=https://myacct.privatelink.blob.core.windows.net;" + sas:                "",
		"BlobEndpoint=http://127.0.0.1:10000/myacct;" + sas:                                   "",
		"AccountName=myacct;" + key + ";BlobEndpoint=https://releases.example.com":            "",
		"AccountName=myacct;" + key + ";EndpointSuffix=core.windows.net":                      "",
	} {
		t.Setenv(azstore.ConnectionStringEnv, cs)
		_, err := azstore.New(context.Background(), "myacct", "rel", "mix", azstore.Settings{})
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", cs, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want it to say %s", cs, err, want)
		case err != nil && (strings.Contains(err.Error(), "SECRETSIG") || strings.Contains(err.Error(), testserver.AzuriteKey[:20])):
			t.Errorf("%s: the error repeats the secret: %v", cs, err)
		}
	}
}
