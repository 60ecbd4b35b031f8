variable "name" {
  description = "Name of the function, its role, log group, parameters and the MutatingWebhookConfiguration."
  type        = string
  default     = "sidecar-injector"
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
}

variable "memory_size" {
  description = "Memory of the function, in MB. A review needs a few MB; more memory also means more CPU."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: a ceiling on cost, and a floor that other functions cannot take."
  type        = number
  default     = 20
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the function's logs."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "A customer-managed KMS key for the token parameter and the logs. Null means AWS-managed keys."
  type        = string
  default     = null
}

variable "webhook_timeout_seconds" {
  description = "The API server's timeout for one review; the function's own timeout is one second less."
  type        = number
  default     = 5
}

variable "failure_policy" {
  description = "Fail refuses Pods while the webhook cannot answer; Ignore admits them uninjected."
  type        = string
  default     = "Fail"
}

variable "tags" {
  description = "Tags for every AWS resource."
  type        = map(string)
  default     = {}
}
