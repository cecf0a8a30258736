# Import a published version as name@version.
terraform import immutable_release.web web@1.0.0
