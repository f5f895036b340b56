variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "name" {
  type    = string
  default = "prognos"
}

variable "image" {
  type        = string
  description = "The runtime image (deploy/Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prognos:0.1.0"
}

variable "model_bucket_name" {
  type        = string
  description = "S3 bucket of the model registry (created here)."
}

variable "model_alias" {
  type    = string
  default = "production"
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the HTTPS listener."
}

variable "allowed_cidrs" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "Networks that may reach the load balancer (HTTPS 443)."
}

variable "admin_token_parameter" {
  type        = string
  default     = "/prognos/admin-token"
  description = "Name of the SSM SecureString holding the admin token (created out of band)."
}

variable "vpc_cidr" {
  type    = string
  default = "10.40.0.0/16"
}

variable "task_cpu" {
  type    = number
  default = 512
}

variable "task_memory" {
  type        = number
  default     = 1024
  description = "MiB per task; the container is capped at 600 MiB of it (the rest: agent, page cache)."
}

variable "min_tasks" {
  type    = number
  default = 2
}

variable "max_tasks" {
  type    = number
  default = 6
}

variable "cpu_target" {
  type        = number
  default     = 60
  description = "Average CPU % the autoscaler keeps the service at."
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.micro"
}

variable "db_multi_az" {
  type    = bool
  default = false
}

variable "db_allocated_storage_gb" {
  type    = number
  default = 20
}

variable "alarm_email" {
  type    = string
  default = null
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "enable_sagemaker" {
  type        = bool
  default     = false
  description = "Also run the same image as a SageMaker real-time endpoint (the SageMaker contract)."
}

variable "sagemaker_model_data" {
  type        = string
  default     = null
  description = "s3:// URL of a model.tar.gz holding one bundle directory's files (needed with enable_sagemaker)."
}

variable "sagemaker_instance_type" {
  type    = string
  default = "ml.t2.medium"
}
