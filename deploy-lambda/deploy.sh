#!/usr/bin/env bash
# Deploy the webhook to AWS Lambda without Terraform: build the zip, create or update the role, log
# group, SSM parameters, function (code and every setting), Function URL and its two permissions,
# then register the webhook in the current kubectl context. Every run makes all of them as this
# script says; any error it does not expect stops it with the step that failed.
#
#   deploy-lambda/deploy.sh [CONFIG.yaml]                  deploy, or update (default: built-in config)
#   deploy-lambda/deploy.sh --rotate-token [CONFIG.yaml]   the same, then a new token, without an outage
#   deploy-lambda/deploy.sh --render-webhook URL [CONFIG]  print the registration only (TOKEN from the
#                                                          environment; the end-to-end test uses it)
#
# Needs kubectl, cargo-lambda, and an aws CLI that knows `lambda add-permission
# --invoked-via-function-url` (October 2025 on). The region is the one the aws CLI resolves
# (AWS_REGION, AWS_DEFAULT_REGION, then the profile); the partition is the caller's.
#
# Environment: NAME (sidecar-injector), ARCH (x86_64 or arm64), MEMORY (256 MB), TIMEOUT (the
# webhook's, 5 s; the function's is one less), RESERVED_CONCURRENCY (unset: none reserved, see
# docs/lambda.md), OVERLAP_SECONDS (60: how long a rotation accepts both tokens), ZIP (a zip already
# built), SIDECAR_INJECTOR (the CLI that renders the registration; default: cargo run).
#
# The token never appears on a command line: it goes to the aws CLI in a file, to kubectl on stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME="${NAME:-sidecar-injector}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STEP="start"
# 40 letters and digits: 80 base64 characters less the few + and / give at least 40.
new_token() { head -c 60 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9' | head -c 40; }
trap 'echo "deploy.sh: failed while: $STEP" >&2' ERR
fail() { echo "deploy.sh: $*" >&2; exit 1; }
step() { STEP=$1; echo "== $1"; }

# The registration for the Function URL $1 and the configuration $2, with $TOKEN in its url: the
# CLI renders it with a placeholder, and bash puts the token in, so that no argv holds it.
render_webhook() {
  local rendered
  if [ -n "${SIDECAR_INJECTOR:-}" ]; then
    rendered=$("$SIDECAR_INJECTOR" webhook-config -c "$2" --name "$NAME" --url "${1%/}/mutate/TOKEN")
  else
    rendered=$(cargo run --quiet --release --bin sidecar-injector -- webhook-config -c "$2" --name "$NAME" --url "${1%/}/mutate/TOKEN")
  fi
  printf '%s\n' "${rendered//\/mutate\/TOKEN//mutate/$TOKEN}"
}
if [ "${1:-}" = --render-webhook ]; then
  : "${TOKEN:?set TOKEN}"
  render_webhook "${2:?the Function URL}" "${3:-src/engine/default-config.yaml}"
  exit 0
fi
ROTATE=false
if [ "${1:-}" = --rotate-token ]; then ROTATE=true; shift; fi

ARCH="${ARCH:-x86_64}"
MEMORY="${MEMORY:-256}"
TIMEOUT="${TIMEOUT:-5}"
OVERLAP_SECONDS="${OVERLAP_SECONDS:-60}"
CONFIG="${1:-src/engine/default-config.yaml}"
[ -r "$CONFIG" ] || fail "cannot read the configuration $CONFIG"
case "$ARCH" in x86_64 | arm64) ;; *) fail "ARCH must be x86_64 or arm64, not $ARCH" ;; esac
if ! [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || [ "$TIMEOUT" -lt 2 ] || [ "$TIMEOUT" -gt 30 ]; then
  fail "TIMEOUT must be 2 to 30 (the API server allows at most 30), not $TIMEOUT"
fi

step "the account and region"
REGION=$(aws configure list | awk '$1 == "region" { print $2 }')
if [ -z "$REGION" ] || [ "$REGION" = "<not" ]; then # "<not set>", split by awk
  fail "no AWS region: set AWS_REGION (AWS_DEFAULT_REGION for aws CLI v1) or a region in the profile"
fi
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
IDENTITY=$(aws sts get-caller-identity --query '[Account, Arn]' --output text)
read -r ACCOUNT CALLER <<<"$IDENTITY"
PARTITION=$(cut -d: -f2 <<<"$CALLER")
echo "account $ACCOUNT, region $REGION, partition $PARTITION"

# Runs the aws CLI; succeeds, or fails quietly when its error is the expected $1, or stops the
# script with the CLI's own message.
aws_unless() {
  local expected=$1; shift
  if aws "$@" 2>"$WORK/error"; then return 0; fi
  grep -q "($expected)" "$WORK/error" && return 1
  cat "$WORK/error" >&2
  fail "aws $1 $2 failed"
}

if [ -z "${ZIP:-}" ]; then
  step "the zip ($ARCH)"
  flag=--x86-64; [ "$ARCH" = arm64 ] && flag=--arm64
  cargo lambda build --profile lambda "$flag" --output-format zip --no-default-features --features lambda --bin sidecar-injector-lambda
  ZIP="${CARGO_TARGET_DIR:-target}/lambda/sidecar-injector-lambda/bootstrap.zip"
fi

step "SSM parameters"
# The token parameter holds the current token, and during a rotation the previous one on a second
# line. Only a parameter that does not exist yet gets a new token: any other error stops here, so
# that the cluster and the function never end up with different tokens.
if aws_unless ParameterNotFound ssm get-parameter --name "/$NAME/token" --with-decryption \
  --query Parameter.Value --output text >"$WORK/tokens"; then
  created_token=false
else
  new_token >"$WORK/tokens"
  created_token=true
fi
TOKEN=$(head -n 1 "$WORK/tokens")
[ ${#TOKEN} -ge 16 ] || fail "the token parameter /$NAME/token holds no usable token"
put_tokens() {
  aws ssm put-parameter --name "/$NAME/token" --type SecureString --value "file://$WORK/tokens" \
    --overwrite --query Version --output text
}
if $created_token; then
  TOKEN_VERSION=$(put_tokens)
else
  TOKEN_VERSION=$(aws ssm get-parameter --name "/$NAME/token" --query Parameter.Version --output text)
fi
# Standard holds 4 KB; a larger configuration needs the Advanced tier, which is billed. SSM never
# moves a parameter back to Standard, so one that is Advanced stays so.
TIER=$(aws ssm describe-parameters --parameter-filters "Key=Name,Values=/$NAME/config" \
  --query 'Parameters[0].Tier' --output text)
if [ "$TIER" = Advanced ]; then
  echo "the configuration parameter is in the Advanced tier, which is billed; SSM cannot move it back to Standard (delete it to)"
elif [ "$(wc -c <"$CONFIG")" -gt 4096 ]; then
  TIER=Advanced
  echo "the configuration is over 4 KB: the Advanced tier, which is billed"
else
  TIER=Standard
fi
CONFIG_VERSION=$(aws ssm put-parameter --name "/$NAME/config" --type String --tier "$TIER" --value "file://$CONFIG" \
  --overwrite --query Version --output text)

step "role and log group"
if ! aws_unless NoSuchEntity iam get-role --role-name "$NAME" >/dev/null; then
  aws iam create-role --role-name "$NAME" --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
  aws iam wait role-exists --role-name "$NAME"
fi
aws_unless ResourceAlreadyExistsException logs create-log-group --log-group-name "/aws/lambda/$NAME" || true
aws logs put-retention-policy --log-group-name "/aws/lambda/$NAME" --retention-in-days 30
PARAMETERS="arn:$PARTITION:ssm:$REGION:$ACCOUNT:parameter/$NAME"
aws iam put-role-policy --role-name "$NAME" --policy-name "$NAME" --policy-document "$(cat <<POLICY
{"Version":"2012-10-17","Statement":[
 {"Sid":"Logs","Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:$PARTITION:logs:$REGION:$ACCOUNT:log-group:/aws/lambda/$NAME:*"},
 {"Sid":"ReadItsTwoParameters","Effect":"Allow","Action":"ssm:GetParameter","Resource":["$PARAMETERS/config","$PARAMETERS/token"]}]}
POLICY
)"

step "the function"
ROLE="arn:$PARTITION:iam::$ACCOUNT:role/$NAME"
# The parameters pinned to their versions: a new version is a new environment, which replaces
# every running instance (docs/lambda.md).
environment() {
  echo "Variables={SIDECAR_INJECTOR_CONFIG_PARAMETER=/$NAME/config:$CONFIG_VERSION,SIDECAR_INJECTOR_TOKEN_PARAMETER=/$NAME/token:$TOKEN_VERSION}"
}
settings=(--role "$ROLE" --runtime provided.al2023 --handler bootstrap --memory-size "$MEMORY"
  --timeout $((TIMEOUT - 1)) --logging-config LogFormat=JSON)
if aws_unless ResourceNotFoundException lambda get-function --function-name "$NAME" >/dev/null; then
  aws lambda update-function-code --function-name "$NAME" --zip-file "fileb://$ZIP" --architectures "$ARCH" >/dev/null
  aws lambda wait function-updated-v2 --function-name "$NAME"
  aws lambda update-function-configuration --function-name "$NAME" "${settings[@]}" --environment "$(environment)" >/dev/null
else
  # A new role takes a few seconds to be usable by Lambda, which says so in this one error.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if aws lambda create-function --function-name "$NAME" "${settings[@]}" --environment "$(environment)" \
      --architectures "$ARCH" --zip-file "fileb://$ZIP" >/dev/null 2>"$WORK/error"; then break; fi
    if ! grep -q "cannot be assumed by Lambda" "$WORK/error" || [ $attempt = 10 ]; then
      cat "$WORK/error" >&2
      fail "aws lambda create-function failed"
    fi
    sleep 3
  done
  aws lambda wait function-active-v2 --function-name "$NAME"
fi
aws lambda wait function-updated-v2 --function-name "$NAME"
if [ -n "${RESERVED_CONCURRENCY:-}" ]; then
  aws lambda put-function-concurrency --function-name "$NAME" --reserved-concurrent-executions "$RESERVED_CONCURRENCY" >/dev/null
else
  aws lambda delete-function-concurrency --function-name "$NAME"
fi

step "the Function URL"
# Auth type NONE: the API server cannot sign requests; the path token authenticates it.
if ! aws_unless ResourceNotFoundException lambda get-function-url-config --function-name "$NAME" \
  --query FunctionUrl --output text >"$WORK/url"; then
  aws lambda create-function-url-config --function-name "$NAME" --auth-type NONE --query FunctionUrl --output text >"$WORK/url"
fi
URL=$(cat "$WORK/url")
# Both permissions, since October 2025. An existing one is left as it is.
aws_unless ResourceNotFoundException lambda get-policy --function-name "$NAME" --query Policy --output text >"$WORK/policy" || true
permit() {
  grep -q "\"Sid\": *\"$1\"" "$WORK/policy" && return 0
  aws_unless ResourceConflictException lambda add-permission --function-name "$NAME" --statement-id "$1" \
    --principal '*' "${@:2}" >/dev/null || true
}
permit FunctionUrlPublic --action lambda:InvokeFunctionUrl --function-url-auth-type NONE
permit FunctionUrlInvoke --action lambda:InvokeFunction --invoked-via-function-url

step "the webhook registration"
# The in-cluster injector's object has the same name, a Service and a caBundle: applying over it
# would keep the caBundle, and the API server would then refuse AWS's certificate.
kubectl get mutatingwebhookconfiguration "$NAME" -o jsonpath='{.webhooks[*].clientConfig.service.name}{.webhooks[*].clientConfig.caBundle}' \
  >"$WORK/existing" 2>/dev/null || true
if [ -s "$WORK/existing" ]; then
  fail "MutatingWebhookConfiguration $NAME is the in-cluster injector's (it has a Service or a caBundle): delete it first, or set NAME"
fi
render_webhook "$URL" "$CONFIG" | kubectl apply -f -

# The function accepts exactly the tokens given: a new version of the parameter, one per line, and
# every instance replaced by one whose environment is pinned to it.
accept_only() {
  (IFS=$'\n'; printf '%s' "$*") >"$WORK/tokens"
  TOKEN_VERSION=$(put_tokens)
  aws lambda update-function-configuration --function-name "$NAME" --environment "$(environment)" >/dev/null
  aws lambda wait function-updated-v2 --function-name "$NAME"
}
if $ROTATE; then
  step "token rotation: the new token accepted beside the old one"
  OLD=$TOKEN
  TOKEN=$(new_token)
  accept_only "$TOKEN" "$OLD"
  step "token rotation: the new token in the webhook, then $OVERLAP_SECONDS s for every API server to use it"
  render_webhook "$URL" "$CONFIG" | kubectl apply -f -
  sleep "$OVERLAP_SECONDS"
  step "token rotation: the old token retired"
  accept_only "$TOKEN"
fi
echo "done: label a namespace sidecar-injector.io/inject=enabled to inject its new Pods"
