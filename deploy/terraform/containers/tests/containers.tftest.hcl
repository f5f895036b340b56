# Offline: `terraform test` with a mocked AWS provider (no credentials, no API calls).
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::prognos-models-test" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:prognos-alarms" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/prognos" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prognos/database-url-AbCdEf" }
  }
  mock_resource "aws_lb" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/prognos/0123456789abcdef" }
  }
  mock_resource "aws_lb_target_group" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/prognos-http/0123456789abcdef" }
  }
  mock_resource "aws_lb_listener" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/prognos/0123456789abcdef/0123456789abcdef" }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/prognos:1" }
  }
}

variables {
  image             = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prognos:0.1.0"
  model_bucket_name = "prognos-models-test"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "containers_defaults" {
  command = apply

  assert {
    condition     = aws_lb_target_group.http.health_check[0].path == "/ready" && aws_lb_target_group.http.health_check[0].matcher == "200"
    error_message = "the load balancer health check must be GET /ready expecting 200"
  }
  assert {
    condition     = aws_lb_listener.https.protocol == "HTTPS" && aws_lb_listener.http_redirect.default_action[0].type == "redirect"
    error_message = "clients reach the service over HTTPS only (HTTP redirects)"
  }
  assert {
    condition = alltrue([
      for name in ["PROGNOS_ADMIN_TOKEN", "PROGNOS_DATABASE_URL"] :
      contains([for s in jsondecode(aws_ecs_task_definition.prognos.container_definitions)[0].secrets : s.name], name)
    ])
    error_message = "the admin token and the database URL must be injected as secrets"
  }
  assert {
    condition = length([
      for e in jsondecode(aws_ecs_task_definition.prognos.container_definitions)[0].environment : e
      if can(regex("TOKEN|PASSWORD|SECRET|DATABASE_URL", e.name))
    ]) == 0
    error_message = "no secret may travel as a plain environment variable"
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_ecs_task_definition.prognos.container_definitions)[0].secrets :
      startswith(s.valueFrom, "arn:aws:ssm:") || startswith(s.valueFrom, "arn:aws:secretsmanager:")
    ])
    error_message = "secrets come from SSM Parameter Store or Secrets Manager"
  }
  assert {
    condition     = aws_db_instance.this.manage_master_user_password == true && aws_db_instance.this.password == null
    error_message = "the database master password is managed by RDS in Secrets Manager, not a variable"
  }
  assert {
    condition     = aws_db_instance.this.storage_encrypted && !aws_db_instance.this.publicly_accessible && aws_db_instance.this.engine_version == "15"
    error_message = "PostgreSQL 15, encrypted, private"
  }
  assert {
    condition     = aws_appautoscaling_target.prognos.min_capacity == 2 && aws_appautoscaling_target.prognos.max_capacity == 6 && aws_appautoscaling_policy.cpu.policy_type == "TargetTrackingScaling"
    error_message = "the service autoscales on CPU between 2 and 6 tasks"
  }
  assert {
    condition     = aws_ecs_service.prognos.network_configuration[0].assign_public_ip == false
    error_message = "tasks run in private subnets without public IPs"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.prognos.container_definitions)[0].readonlyRootFilesystem && jsondecode(aws_ecs_task_definition.prognos.container_definitions)[0].user == "10001:10001"
    error_message = "the container runs as the image's non-root user on a read-only root filesystem"
  }
  assert {
    condition     = output.bucket_versioning == "Enabled" && output.bucket_sse_algorithm == "aws:kms" && alltrue(values(output.bucket_public_access_block))
    error_message = "the model bucket must be versioned, encrypted and closed to the public"
  }
  assert {
    condition = alltrue(flatten([
      for p in output.iam_policies_json : [
        for s in jsondecode(p).Statement :
        !(anytrue([for a in flatten([s.Action]) : strcontains(a, "*")]) && contains(flatten([s.Resource]), "*"))
      ]
    ]))
    error_message = "no IAM statement may grant wildcard actions on all resources"
  }
  assert {
    condition = alltrue([
      for r in values(aws_vpc_security_group_ingress_rule.alb) : contains([80, 443], r.from_port)
    ]) && length(aws_vpc_security_group_ingress_rule.tasks) == 2
    error_message = "the world reaches only the load balancer's 80/443; tasks only from the load balancer"
  }
  assert {
    condition     = length(aws_sagemaker_endpoint.prognos) == 0
    error_message = "SageMaker is off unless asked for"
  }
}

run "with_sagemaker" {
  command = apply
  variables {
    enable_sagemaker     = true
    sagemaker_model_data = "s3://prognos-models-test/sagemaker/model.tar.gz"
  }
  assert {
    condition     = aws_sagemaker_model.prognos[0].primary_container[0].environment["PROGNOS_SAGEMAKER"] == "true" && aws_sagemaker_model.prognos[0].primary_container[0].image == var.image
    error_message = "the SageMaker model runs the same image in SageMaker mode"
  }
}

run "sagemaker_needs_model_data" {
  command = plan
  variables {
    enable_sagemaker = true
  }
  expect_failures = [aws_sagemaker_model.prognos]
}
