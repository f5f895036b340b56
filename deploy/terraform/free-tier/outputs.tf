output "instance_id" {
  value = aws_instance.prognos.id
}

output "public_dns" {
  value = aws_instance.prognos.public_dns
}

output "model_bucket" {
  value = module.model_bucket.bucket
}

output "registry" {
  description = "PROGNOS_REGISTRY_DIR for `prognos models register/approve/promote` from a workstation or CI."
  value       = "s3://${module.model_bucket.bucket}/registry"
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "instance_policy_json" {
  description = "The instance role's inline policy (what it may do)."
  value       = jsonencode(local.instance_policy)
}

output "bucket_versioning" {
  value = module.model_bucket.versioning_status
}

output "bucket_sse_algorithm" {
  value = module.model_bucket.sse_algorithm
}

output "bucket_public_access_block" {
  value = module.model_bucket.public_access_block
}
