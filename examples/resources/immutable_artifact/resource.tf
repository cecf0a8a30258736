# A static site: the digest is known at plan time, and the plan names the
# files that changed.
resource "immutable_artifact" "site" {
  source   = "${path.module}/site"
  excludes = ["**/*.map", ".git"]
}

# A Lambda bundle: a byte-reproducible zip, stored once per content, with the
# hash aws_lambda_function's source_code_hash wants.
resource "immutable_artifact" "lambda" {
  source      = "${path.module}/lambda"
  archive     = "zip"
  output_path = "${path.module}/build/lambda.zip"
}

# Inline content: a rendered config file.
resource "immutable_artifact" "config" {
  content = jsonencode({ feature_flags = { checkout_v2 = true } })
}

output "site_digest" {
  value = immutable_artifact.site.digest
}

output "lambda_source_code_hash" {
  value = immutable_artifact.lambda.archive_base64sha256
}

# The stored zip itself, read-only: on a local store its path
# (aws_lambda_function.filename), on S3 archive_s3_bucket and archive_s3_key.
output "lambda_zip_in_store" {
  value = immutable_artifact.lambda.archive_path
}
