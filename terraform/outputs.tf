output "function_name" {
  description = "The Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_url" {
  description = "The Function URL, without the token."
  value       = aws_lambda_function_url.this.function_url
}

output "webhook_url" {
  description = "The url the webhook configuration calls, token included."
  value       = local.webhook_url
  sensitive   = true
}

output "config_parameter" {
  description = "The SSM parameter holding the configuration. Change config_yaml and apply: the new version replaces every instance."
  value       = aws_ssm_parameter.config.name
}

output "token_parameter" {
  description = "The SSM SecureString holding the path token (two, one per line, during a rotation)."
  value       = aws_ssm_parameter.token.name
}

output "log_group" {
  description = "The function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}
