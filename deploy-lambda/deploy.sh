#!/usr/bin/env bash
# Deploy the webhook to AWS Lambda without Terraform: build the zip, create (or update) the role,
# log group, SSM parameters, function, Function URL and its two permissions, then register the
# webhook in the current kubectl context. Needs the aws CLI v2, cargo-lambda and kubectl.
#
#   deploy-lambda/deploy.sh [CONFIG.yaml]      (default: the built-in configuration)
#
# Environment: NAME (sidecar-injector), ARCH (x86_64 or arm64), AWS_REGION as for the aws CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The webhook registration for the Function URL $1 and the token in $TOKEN (never on a command
# line). `deploy.sh --render-webhook URL` prints only this, with TOKEN from the environment: the
# end-to-end test registers what this script registers.
render_webhook() {
  sed "s|WEBHOOK_URL|${1%/}/mutate/$TOKEN|" deploy-lambda/mutatingwebhookconfiguration.yaml
}
if [ "${1:-}" = --render-webhook ]; then
  : "${TOKEN:?set TOKEN}"
  render_webhook "${2:?the Function URL}"
  exit 0
fi

NAME="${NAME:-sidecar-injector}"
ARCH="${ARCH:-x86_64}"
CONFIG="${1:-src/engine/default-config.yaml}"
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
REGION=$(aws configure get region || echo "${AWS_REGION:?set AWS_REGION}")

echo "== the zip ($ARCH)"
flag=--x86-64; [ "$ARCH" = arm64 ] && flag=--arm64
cargo lambda build --profile lambda "$flag" --output-format zip --no-default-features --features lambda --bin sidecar-injector-lambda
ZIP="${CARGO_TARGET_DIR:-target}/lambda/sidecar-injector-lambda/bootstrap.zip"

echo "== SSM parameters"
TOKEN=$(aws ssm get-parameter --name "/$NAME/token" --with-decryption --query Parameter.Value --output text 2>/dev/null \
  || head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)
aws ssm put-parameter --name "/$NAME/token" --type SecureString --value "$TOKEN" --overwrite >/dev/null
aws ssm put-parameter --name "/$NAME/config" --type String --tier Advanced --value "file://$CONFIG" --overwrite >/dev/null

echo "== role and log group"
if ! aws iam get-role --role-name "$NAME" >/dev/null 2>&1; then
  aws iam create-role --role-name "$NAME" --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
fi
aws logs create-log-group --log-group-name "/aws/lambda/$NAME" 2>/dev/null || true
aws logs put-retention-policy --log-group-name "/aws/lambda/$NAME" --retention-in-days 30
PARAMETERS="arn:aws:ssm:$REGION:$ACCOUNT:parameter/$NAME"
aws iam put-role-policy --role-name "$NAME" --policy-name "$NAME" --policy-document "$(cat <<POLICY
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:$REGION:$ACCOUNT:log-group:/aws/lambda/$NAME:*"},
 {"Effect":"Allow","Action":"ssm:GetParameter","Resource":["$PARAMETERS/config","$PARAMETERS/token"]}]}
POLICY
)"

echo "== the function"
ENVIRONMENT="Variables={SIDECAR_INJECTOR_CONFIG_PARAMETER=/$NAME/config,SIDECAR_INJECTOR_TOKEN_PARAMETER=/$NAME/token}"
if aws lambda get-function --function-name "$NAME" >/dev/null 2>&1; then
  aws lambda update-function-code --function-name "$NAME" --zip-file "fileb://$ZIP" >/dev/null
else
  sleep 10 # a new role takes a few seconds to be usable by Lambda
  aws lambda create-function --function-name "$NAME" --runtime provided.al2023 --handler bootstrap \
    --architectures "$ARCH" --role "arn:aws:iam::$ACCOUNT:role/$NAME" --zip-file "fileb://$ZIP" \
    --memory-size 256 --timeout 4 --environment "$ENVIRONMENT" --logging-config LogFormat=JSON >/dev/null
  aws lambda put-function-concurrency --function-name "$NAME" --reserved-concurrent-executions 20
fi
aws lambda wait function-updated-v2 --function-name "$NAME"

echo "== the Function URL"
# Auth type NONE: the API server cannot sign requests; the path token authenticates it.
URL=$(aws lambda get-function-url-config --function-name "$NAME" --query FunctionUrl --output text 2>/dev/null \
  || aws lambda create-function-url-config --function-name "$NAME" --auth-type NONE --query FunctionUrl --output text)
aws lambda add-permission --function-name "$NAME" --statement-id FunctionUrlPublic \
  --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE >/dev/null 2>&1 || true
aws lambda add-permission --function-name "$NAME" --statement-id FunctionUrlInvoke \
  --action lambda:InvokeFunction --principal '*' --invoked-via-function-url >/dev/null 2>&1 || true

echo "== the webhook registration"
render_webhook "$URL" | kubectl apply -f -
echo "done: label a namespace sidecar-injector.io/inject=enabled to inject its new Pods"
