terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

# With no settings the store is ./.immutable in the directory Terraform runs
# in (or IMMUTABLE_STORE). Set it explicitly to share a store between
# configurations on one machine.
provider "immutable" {
  store = "file://.immutable"
}
