terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Application = "prognos", Topology = "containers", ManagedBy = "terraform" }
  }
}
