variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "name" {
  type        = string
  default     = "prognos"
  description = "Prefix of every resource name."
}

variable "instance_type" {
  type        = string
  default     = "t3.micro"
  description = "Free-tier eligible: t2.micro or t3.micro (1 GB; prognos is capped at 600 MB by its unit)."
  validation {
    condition     = contains(["t2.micro", "t3.micro"], var.instance_type)
    error_message = "instance_type must be free-tier eligible: t2.micro or t3.micro."
  }
}

variable "ami_id" {
  type        = string
  default     = null
  description = "AMI to boot; default: the latest official Debian 12 (bookworm) amd64 image."
}

variable "root_volume_gb" {
  type        = number
  default     = 20
  description = "gp3 root volume (free tier: 30 GB of EBS in total)."
}

variable "model_bucket_name" {
  type        = string
  description = "S3 bucket of the model registry and the release artefacts (created here)."
}

variable "release" {
  type        = string
  description = "Release to install: s3://BUCKET/releases/RELEASE/ holds the prognos wheel and deploy.tar.gz."
}

variable "model_alias" {
  type        = string
  default     = "production"
  description = "Registry alias the server follows (hot-swapped when it moves)."
}

variable "admin_token_parameter" {
  type        = string
  default     = "/prognos/admin-token"
  description = "Name of the SSM SecureString holding the admin token (created out of band; never a variable value)."
}

variable "ssh_cidrs" {
  type        = list(string)
  default     = []
  description = "Networks allowed to SSH (port 22). Empty: no SSH at all (use SSM Session Manager)."
  validation {
    condition     = alltrue([for c in var.ssh_cidrs : !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "SSH must not be open to the world (0.0.0.0/0 or ::/0); use SSM Session Manager or a narrow CIDR."
  }
}

variable "http_cidrs" {
  type        = list(string)
  default     = []
  description = "Networks allowed to the REST API, dashboard and /metrics (port 8000)."
}

variable "grpc_cidrs" {
  type        = list(string)
  default     = []
  description = "Networks allowed to the gRPC API (port 50051)."
}

variable "alarm_email" {
  type        = string
  default     = null
  description = "E-mail subscribed to the alarm topic (confirm the subscription mail)."
}

variable "log_retention_days" {
  type    = number
  default = 30
}
