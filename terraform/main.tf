locals {
  config_yaml   = coalesce(var.config_yaml, file("${path.module}/../src/engine/default-config.yaml"))
  config_base64 = base64encode(local.config_yaml)
  # base64 pads with "=" only: 3 bytes for every 4 characters, less one for each pad.
  config_bytes = length(local.config_base64) / 4 * 3 - length(regexall("=", local.config_base64))

  # Token rotation (var.token_rotation_step): two slots, the current one and the previous one.
  # Rotation r regenerates slot r % 2; each slot's generation changes only when it is its turn.
  rotations      = floor((var.token_rotation_step + 1) / 2)
  current_slot   = tostring(local.rotations % 2)
  previous_slot  = tostring(1 - local.rotations % 2)
  token          = random_password.token[local.current_slot].result
  overlapping    = var.token_rotation_step % 2 == 1
  accepted_token = local.overlapping ? [local.token, random_password.token[local.previous_slot].result] : [local.token]

  # The Lambda's route is /mutate/{token}: see src/lambda/mod.rs.
  webhook_url = "${trimsuffix(aws_lambda_function_url.this.function_url, "/")}/mutate/${local.token}"
}

data "aws_region" "current" {}
data "aws_partition" "current" {}

# The only secret: a Function URL with auth type NONE is public, and a webhook url may carry
# neither credentials nor a query string, so the token is in the path.
resource "random_password" "token" {
  for_each = toset(["0", "1"])
  length   = 40
  special  = false
  # Null until the slot's first rotation, so that the token made before rotation existed stays.
  keepers = floor((local.rotations + tonumber(each.key)) / 2) == 0 ? null : {
    generation = tostring(floor((local.rotations + tonumber(each.key)) / 2))
  }
}

# The token before rotation existed is slot 0's.
moved {
  from = random_password.token
  to   = random_password.token["0"]
}

resource "aws_ssm_parameter" "config" {
  # checkov:skip=CKV2_AWS_34: the configuration is not secret (it is also a ConfigMap in-cluster); the token is a SecureString
  name        = "/${var.name}/config"
  description = "sidecar-injector configuration, read at cold start"
  type        = "String"
  # Standard holds 4 KB; Advanced, up to 8 KB, is billed (the check below says so).
  tier  = local.config_bytes > 4096 ? "Advanced" : "Standard"
  value = local.config_yaml
  tags  = var.tags
}

check "config_parameter_tier" {
  assert {
    condition     = local.config_bytes <= 4096
    error_message = "The configuration is ${local.config_bytes} bytes, over Standard's 4 KB: its SSM parameter uses the Advanced tier, which is billed monthly."
  }
}

resource "aws_ssm_parameter" "token" {
  name        = "/${var.name}/token"
  description = "sidecar-injector path tokens, one per line: the current one, and during a rotation the previous one"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = join("\n", local.accepted_token)
  tags        = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days); the lines carry review metadata only
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "ReadItsTwoParameters"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.config.arn, aws_ssm_parameter.token.arn]
  }

  # Only through SSM, and only for the token parameter (SSM's encryption context).
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptTheToken"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${data.aws_region.current.region}.${data.aws_partition.current.dns_suffix}"]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:PARAMETER_ARN"
        values   = [aws_ssm_parameter.token.arn]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = var.name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_50: X-Ray tracing is not needed for a function that answers in microseconds; its logs carry the latency
  # checkov:skip=CKV_AWS_116: a dead-letter queue only serves asynchronous invocations; the API server calls it synchronously
  # checkov:skip=CKV_AWS_117: it needs no VPC, it reaches nothing but SSM and CloudWatch
  # checkov:skip=CKV_AWS_173: the environment holds only the parameter names; the token is a SecureString
  # checkov:skip=CKV_AWS_272: code signing needs a signing profile the user sets up; the zip's hash is pinned by source_code_hash
  function_name    = var.name
  role             = aws_iam_role.this.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  memory_size      = var.memory_size
  timeout          = var.webhook_timeout_seconds - 1
  # -1: no reservation, the account's unreserved pool (docs/lambda.md, "Concurrency").
  reserved_concurrent_executions = coalesce(var.reserved_concurrency, -1)

  # Each parameter pinned to its version: a new configuration or token is a new environment,
  # which Lambda rolls out by replacing every instance (src/lambda/cold_start.rs).
  environment {
    variables = {
      SIDECAR_INJECTOR_CONFIG_PARAMETER = "${aws_ssm_parameter.config.name}:${aws_ssm_parameter.config.version}"
      SIDECAR_INJECTOR_TOKEN_PARAMETER  = "${aws_ssm_parameter.token.name}:${aws_ssm_parameter.token.version}"
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_function_url" "this" {
  function_name = aws_lambda_function.this.function_name
  # NONE: the API server cannot sign requests with AWS credentials. The path token is the
  # credential; the function answers 404 to anything without it, before reading the body.
  # checkov:skip=CKV_AWS_258: the API server cannot sign requests; the path token authenticates it
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# A public Function URL needs both permissions since October 2025.
resource "aws_lambda_permission" "url" {
  # checkov:skip=CKV_AWS_301: public by design, see the Function URL above; the path token authenticates
  statement_id           = "FunctionUrlPublic"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "invoke_via_url" {
  # checkov:skip=CKV_AWS_301: limited to calls through the Function URL, public by design; the path token authenticates
  statement_id             = "FunctionUrlInvoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this.function_name
  principal                = "*"
  invoked_via_function_url = true
}

# The same registration as deploy-incluster/70-mutatingwebhookconfiguration.yaml, with a url
# instead of a Service, and no caBundle: the Function URL has AWS's public certificate. No
# matchConditions: hashicorp/kubernetes has no block for them yet (docs/lambda.md).
resource "kubernetes_mutating_webhook_configuration_v1" "this" {
  metadata {
    name   = var.name
    labels = { "app.kubernetes.io/name" = "sidecar-injector" }
  }

  webhook {
    name                      = "inject.sidecar-injector.io"
    admission_review_versions = ["v1"]
    side_effects              = "None"
    failure_policy            = var.failure_policy
    timeout_seconds           = var.webhook_timeout_seconds
    reinvocation_policy       = "Never"
    match_policy              = "Equivalent"

    client_config {
      url = local.webhook_url
    }

    rule {
      api_groups   = [""]
      api_versions = ["v1"]
      operations   = ["CREATE"]
      resources    = ["pods"]
      scope        = "Namespaced"
    }

    namespace_selector {
      match_labels = { "sidecar-injector.io/inject" = "enabled" }
    }

    object_selector {
      match_expressions {
        key      = "sidecar-injector.io/inject"
        operator = "NotIn"
        values   = ["false"]
      }
    }
  }

  # After the function: during a rotation it accepts the new token before the webhook sends it.
  depends_on = [aws_lambda_function.this, aws_lambda_permission.url, aws_lambda_permission.invoke_via_url]
}
