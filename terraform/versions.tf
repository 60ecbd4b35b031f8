terraform {
  required_version = ">= 1.6"

  required_providers {
    # 6.28 adds invoked_via_function_url, for the second permission a public Function URL needs.
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.28"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.30"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6"
    }
  }
}
