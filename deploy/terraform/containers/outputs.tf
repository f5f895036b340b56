output "url" {
  value = "https://${aws_lb.this.dns_name}"
}

output "registry" {
  description = "PROGNOS_REGISTRY_DIR for `prognos models register/approve/promote` from CI."
  value       = "s3://${module.model_bucket.bucket}/registry"
}

output "database_url_secret_arn" {
  description = "Put PROGNOS_DATABASE_URL here: aws secretsmanager put-secret-value --secret-id ARN --secret-string URL"
  value       = aws_secretsmanager_secret.database_url.arn
}

output "db_endpoint" {
  value = aws_db_instance.this.address
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "sagemaker_endpoint" {
  value = var.enable_sagemaker ? aws_sagemaker_endpoint.prognos[0].name : null
}

output "iam_policies_json" {
  description = "Every inline policy this topology writes (what each role may do)."
  value       = [jsonencode(local.execution_policy), jsonencode(local.task_policy), jsonencode(local.sagemaker_policy)]
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
