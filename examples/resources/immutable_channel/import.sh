# A channel is imported by release/channel.
terraform import immutable_channel.prod web/prod
