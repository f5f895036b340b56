# Optional: the same image as a SageMaker real-time endpoint. SageMaker starts it as `IMAGE serve`
# with the model.tar.gz unpacked at /opt/ml/model; the entry point then speaks the SageMaker
# contract (GET /ping, POST /invocations on 8080). No fleet app there: predictions only.

locals {
  sagemaker_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadModelData"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${module.model_bucket.arn}/*"]
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = ["arn:${local.partition}:ecr:${local.region}:${local.account}:repository/*"]
      },
      {
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"] # no resource-level permissions exist for it
        Resource = ["*"]
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/sagemaker/*"]
      },
    ]
  }
}

resource "aws_iam_role" "sagemaker" {
  count = var.enable_sagemaker ? 1 : 0
  name  = "${var.name}-sagemaker"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "sagemaker.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "sagemaker" {
  count  = var.enable_sagemaker ? 1 : 0
  name   = "${var.name}-sagemaker"
  role   = aws_iam_role.sagemaker[0].id
  policy = jsonencode(local.sagemaker_policy)
}

resource "aws_sagemaker_model" "prognos" {
  count              = var.enable_sagemaker ? 1 : 0
  name               = var.name
  execution_role_arn = aws_iam_role.sagemaker[0].arn
  primary_container {
    image          = var.image
    model_data_url = var.sagemaker_model_data
    environment    = { PROGNOS_SAGEMAKER = "true" }
  }
  lifecycle {
    precondition {
      condition     = var.sagemaker_model_data != null
      error_message = "enable_sagemaker needs sagemaker_model_data (s3://.../model.tar.gz)."
    }
  }
}

resource "aws_sagemaker_endpoint_configuration" "prognos" {
  count = var.enable_sagemaker ? 1 : 0
  name  = var.name
  production_variants {
    variant_name           = "primary"
    model_name             = aws_sagemaker_model.prognos[0].name
    instance_type          = var.sagemaker_instance_type
    initial_instance_count = 1
  }
}

resource "aws_sagemaker_endpoint" "prognos" {
  count                = var.enable_sagemaker ? 1 : 0
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.prognos[0].name
}
