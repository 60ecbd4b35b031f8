variable "name" {
  description = "Name of the function, its role, log group, parameters and the MutatingWebhookConfiguration."
  type        = string
  default     = "sidecar-injector"

  validation {
    # A Lambda function and IAM role name (64 characters) and a Kubernetes object name at once.
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,62}[a-z0-9])?$", var.name))
    error_message = "name must be 1 to 64 lowercase letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "zip_path" {
  description = "The deployable zip from `cargo lambda build --profile lambda --output-format zip --no-default-features --features lambda --bin sidecar-injector-lambda`."
  type        = string
  default     = "../target/lambda/sidecar-injector-lambda/bootstrap.zip"
}

variable "architecture" {
  description = "x86_64, or arm64 for Graviton (build the zip with --arm64)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "config_yaml" {
  description = "The injection configuration (YAML). Null means the built-in one, from the repository."
  type        = string
  default     = null

  validation {
    condition     = var.config_yaml == null || length(coalesce(var.config_yaml, " ")) <= 8192
    error_message = "config_yaml must fit in an SSM parameter: at most 8 KB (the Advanced tier)."
  }
}

variable "memory_size" {
  description = "Memory of the function, in MB. A review needs a few MB; more memory also means more CPU."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240, as Lambda allows."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: a ceiling on cost, and a floor other functions cannot take. Null reserves none: a new account (quota 10) cannot reserve any. See docs/lambda.md, \"Concurrency\"."
  type        = number
  default     = null

  validation {
    # 0 would throttle every request: the API server would then refuse every Pod it sends.
    condition     = var.reserved_concurrency == null || (coalesce(var.reserved_concurrency, 1) >= 1 && floor(coalesce(var.reserved_concurrency, 1)) == coalesce(var.reserved_concurrency, 1))
    error_message = "reserved_concurrency must be null (none reserved) or a whole number of at least 1."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the function's logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_key_arn" {
  description = "A customer-managed KMS key for the token parameter and the logs. Null means AWS-managed keys. Its key policy must let CloudWatch Logs use it (docs/lambda.md, \"KMS\")."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", coalesce(var.kms_key_arn, "-")))
    error_message = "kms_key_arn must be a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

variable "webhook_timeout_seconds" {
  description = "The API server's timeout for one review; the function's own timeout is one second less."
  type        = number
  default     = 5

  validation {
    # The API server allows 1 to 30; the function needs at least 1 of its own.
    condition     = var.webhook_timeout_seconds >= 2 && var.webhook_timeout_seconds <= 30 && floor(var.webhook_timeout_seconds) == var.webhook_timeout_seconds
    error_message = "webhook_timeout_seconds must be a whole number from 2 to 30: the API server allows at most 30, and the function's timeout is one less."
  }
}

variable "failure_policy" {
  description = "Fail refuses Pods while the webhook cannot answer; Ignore admits them uninjected."
  type        = string
  default     = "Fail"

  validation {
    condition     = contains(["Fail", "Ignore"], var.failure_policy)
    error_message = "failure_policy must be Fail or Ignore."
  }
}

variable "token_rotation_step" {
  description = "Rotates the path token without an outage, one step per apply. Odd: a new token is in the webhook, and the previous one is still accepted. Even: the previous one is retired. To rotate, add 1 and apply; once every API server uses the new token (seconds), add 1 and apply again. See docs/lambda.md, \"Token rotation\"."
  type        = number
  default     = 0

  validation {
    condition     = var.token_rotation_step >= 0 && floor(var.token_rotation_step) == var.token_rotation_step
    error_message = "token_rotation_step must be a whole number, 0 or more; it only ever goes up by 1."
  }
}

variable "tags" {
  description = "Tags for every AWS resource."
  type        = map(string)
  default     = {}
}
