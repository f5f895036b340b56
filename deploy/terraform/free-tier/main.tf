# Free-tier topology: one EC2 instance running prognos under systemd (deploy/systemd/prognos.service)
# with SQLite on its EBS volume, the model registry in S3, CloudWatch alarms to an SNS topic.
# Step by step: docs/deploy.md "AWS free tier".

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_vpc" "default" {
  default = true
}

data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  log_group = "/prognos/${var.name}"
  token_arn = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(var.admin_token_parameter, "/")}"

  # The instance role: read the registry and releases, write its logs and metrics, read its token.
  # No statement has a wildcard action; the one Resource "*" is PutMetricData (no resource-level
  # permissions exist for it), restricted to the prognos namespace by a condition.
  instance_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadModelBucket"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource = ["${module.model_bucket.arn}/*"]
      },
      {
        Sid      = "ListModelBucket"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [module.model_bucket.arn]
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = ["${aws_cloudwatch_log_group.prognos.arn}:*"]
      },
      {
        Sid       = "PutPrognosMetrics"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = ["*"]
        Condition = { StringEquals = { "cloudwatch:namespace" = "prognos" } }
      },
      {
        Sid      = "ReadAdminToken"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = [local.token_arn]
      },
    ]
  }
}

module "model_bucket" {
  source = "../modules/model-bucket"
  name   = var.model_bucket_name
}

# ---- network: the default VPC, a security group with only what was asked for ------------------

resource "aws_security_group" "prognos" {
  name        = "${var.name}-instance"
  description = "prognos instance: REST 8000 and gRPC 50051 from the given networks; SSH only from ssh_cidrs"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  for_each          = toset(var.http_cidrs)
  security_group_id = aws_security_group.prognos.id
  description       = "prognos REST API, dashboard, /metrics"
  ip_protocol       = "tcp"
  from_port         = 8000
  to_port           = 8000
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "grpc" {
  for_each          = toset(var.grpc_cidrs)
  security_group_id = aws_security_group.prognos.id
  description       = "prognos gRPC API"
  ip_protocol       = "tcp"
  from_port         = 50051
  to_port           = 50051
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.ssh_cidrs)
  security_group_id = aws_security_group.prognos.id
  description       = "SSH from an operator network"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.prognos.id
  description       = "HTTPS out: S3, SSM, CloudWatch, Debian and PyPI mirrors, webhooks"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.prognos.id
  description       = "HTTP out: Debian package mirror (apt verifies signatures)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

# ---- identity ------------------------------------------------------------------------------------

resource "aws_iam_role" "instance" {
  name = "${var.name}-instance"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "instance" {
  name   = "${var.name}-instance"
  role   = aws_iam_role.instance.id
  policy = jsonencode(local.instance_policy)
}

# Shell access without SSH: SSM Session Manager (AWS-managed policy, no wildcard actions).
resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
}

# ---- the instance --------------------------------------------------------------------------------

resource "aws_instance" "prognos" {
  ami                         = coalesce(var.ami_id, data.aws_ami.debian12.id)
  instance_type               = var.instance_type
  iam_instance_profile        = aws_iam_instance_profile.instance.name
  vpc_security_group_ids      = [aws_security_group.prognos.id]
  monitoring                  = false # detailed monitoring is not free; 5-minute metrics suffice here
  ebs_optimized               = true
  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    bucket          = module.model_bucket.bucket
    release         = var.release
    model_alias     = var.model_alias
    token_parameter = var.admin_token_parameter
    region          = local.region
    log_group       = local.log_group
  })

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    http_endpoint               = "enabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_gb
    encrypted             = true
    delete_on_termination = false # the SQLite database lives here
  }

  tags = { Name = var.name }
}

# ---- logs, alarms, notifications ----------------------------------------------------------------

resource "aws_cloudwatch_log_group" "prognos" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# The instance: hardware/OS failure -> recover it onto healthy hardware, and tell someone.
resource "aws_cloudwatch_metric_alarm" "status_check" {
  alarm_name          = "${var.name}-status-check-failed"
  alarm_description   = "EC2 system status check failed: the instance is being recovered"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = aws_instance.prognos.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  alarm_actions       = ["arn:${local.partition}:automate:${local.region}:ec2:recover", aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${var.name}-cpu-high"
  alarm_description   = "CPU above 80% for 15 minutes (t3.micro burst credits run out; scale up or out)"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { InstanceId = aws_instance.prognos.id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The service: user-data installs a timer that puts prognos/Ready (1 when GET /ready is 200) every
# minute. Missing data counts as not ready: a dead instance or a dead timer also alarms.
resource "aws_cloudwatch_metric_alarm" "not_ready" {
  alarm_name          = "${var.name}-not-ready"
  alarm_description   = "prognos /ready not 200 for 3 minutes (no model, crashed, or the instance is down)"
  namespace           = "prognos"
  metric_name         = "Ready"
  dimensions          = { InstanceId = aws_instance.prognos.id }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "memory" {
  alarm_name          = "${var.name}-memory-high"
  alarm_description   = "prognos resident memory above 540 MiB (its unit kills it at 600 MiB)"
  namespace           = "prognos"
  metric_name         = "ResidentMemoryBytes"
  dimensions          = { InstanceId = aws_instance.prognos.id }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = 540 * 1024 * 1024
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "disk" {
  alarm_name          = "${var.name}-disk-low"
  alarm_description   = "Less than 10% free on /var/lib/prognos: set or shorten PROGNOS_RETENTION_DAYS"
  namespace           = "prognos"
  metric_name         = "DataDirFreePercent"
  dimensions          = { InstanceId = aws_instance.prognos.id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  threshold           = 10
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}
