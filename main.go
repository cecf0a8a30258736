package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/immutable-infra/terraform-provider-immutable/internal/gc"
	"github.com/immutable-infra/terraform-provider-immutable/internal/provider"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signcli"
)

// version is set by goreleaser with -X main.version.
var version = "dev"

func main() {
	// `terraform-provider-immutable gc …` is the store's garbage collector,
	// run from a cron job or CI; anything else serves the provider.
	if len(os.Args) > 1 && os.Args[1] == "gc" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := gc.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// `verify`, `sign` and `envelope` check and countersign release
	// records' signatures outside Terraform.
	if len(os.Args) > 1 && slices.Contains(signcli.Commands, os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := signcli.Main(ctx, os.Args[1], os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	// Log only what the CLI shows: unset, the SDK logs every request at
	// TRACE for the CLI to parse and drop.
	if err := provider.SetLogLevels(os.Getenv, os.Setenv); err != nil {
		log.Fatal(err.Error())
	}
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/immutable-infra/immutable",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
