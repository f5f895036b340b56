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
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::prognos-models-test" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:prognos-alarms" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/prognos-instance" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/prognos/prognos" }
  }
}

variables {
  model_bucket_name = "prognos-models-test"
  release           = "0.1.0"
  ssh_cidrs         = ["203.0.113.0/24"]
  http_cidrs        = ["198.51.100.0/24"]
}

run "free_tier_defaults" {
  command = apply

  assert {
    condition     = contains(["t2.micro", "t3.micro"], aws_instance.prognos.instance_type)
    error_message = "the instance must be a free-tier type"
  }
  assert {
    condition = alltrue([
      for r in concat(values(aws_vpc_security_group_ingress_rule.ssh), values(aws_vpc_security_group_ingress_rule.http),
      values(aws_vpc_security_group_ingress_rule.grpc)) :
      !(r.from_port <= 22 && r.to_port >= 22 && contains(["0.0.0.0/0", "::/0"], coalesce(r.cidr_ipv4, r.cidr_ipv6, "-")))
    ])
    error_message = "port 22 must not be open to the world"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 1 && aws_vpc_security_group_ingress_rule.ssh["203.0.113.0/24"].from_port == 22
    error_message = "SSH is allowed only from the given network"
  }
  assert {
    condition     = output.bucket_versioning == "Enabled"
    error_message = "the model bucket must be versioned"
  }
  assert {
    condition     = output.bucket_sse_algorithm == "aws:kms"
    error_message = "the model bucket must be encrypted (SSE-KMS)"
  }
  assert {
    condition     = alltrue(values(output.bucket_public_access_block))
    error_message = "every public access block setting must be on"
  }
  assert {
    condition = alltrue([
      for s in jsondecode(output.instance_policy_json).Statement :
      !(anytrue([for a in flatten([s.Action]) : strcontains(a, "*")]) && contains(flatten([s.Resource]), "*"))
    ])
    error_message = "no IAM statement may grant wildcard actions on all resources"
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : !contains(flatten([s.Action]), "*")
    ])
    error_message = "no IAM statement may grant every action"
  }
  assert {
    condition     = aws_instance.prognos.metadata_options[0].http_tokens == "required" && aws_instance.prognos.root_block_device[0].encrypted
    error_message = "IMDSv2 only and an encrypted root volume"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.not_ready.treat_missing_data == "breaching" && contains(aws_cloudwatch_metric_alarm.not_ready.alarm_actions, aws_sns_topic.alarms.arn)
    error_message = "the readiness alarm notifies the topic and treats silence as failure"
  }
  assert {
    condition     = !strcontains(aws_instance.prognos.user_data, "PROGNOS_ADMIN_TOKEN=$token") ? false : strcontains(aws_instance.prognos.user_data, "aws ssm get-parameter --with-decryption")
    error_message = "user-data reads the admin token from SSM at boot"
  }
}

run "no_ssh_by_default" {
  command = plan
  variables {
    ssh_cidrs = []
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 0
    error_message = "without ssh_cidrs there is no SSH rule"
  }
}

run "ssh_from_the_world_is_refused" {
  command = plan
  variables {
    ssh_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.ssh_cidrs]
}

run "non_free_tier_type_is_refused" {
  command = plan
  variables {
    instance_type = "m5.large"
  }
  expect_failures = [var.instance_type]
}
