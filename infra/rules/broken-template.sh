#!/usr/bin/env bash
# Proves the policy gate catches real mistakes in the real template: three deliberately broken copies of
# infra/template.yaml (a wildcard IAM action, an unencrypted dead-letter queue, a function without its
# on-failure destination) must each fail `cfn-guard validate` with the rule that names the mistake.
# Usage: infra/rules/broken-template.sh <cfn-guard binary>
set -euo pipefail
guard="$1"
here="$(cd "$(dirname "$0")" && pwd)"
template="$here/../template.yaml"
rules="$here/secure-mlops.guard"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# break <name> <expected failing rule> <text to find> <replacement>
break_template() {
  local name="$1" rule="$2" find="$3" replace="$4" copy="$work/$1.yaml"
  FIND="$find" REPLACE="$replace" python3 - "$template" "$copy" <<'EOF'
import os, sys
text = open(sys.argv[1]).read()
find, replace = os.environ["FIND"], os.environ["REPLACE"]
if find not in text:
    sys.exit(f"broken-template: the template no longer contains {find!r}; update this test")
open(sys.argv[2], "w").write(text.replace(find, replace, 1))
EOF
  local out rc=0
  out="$("$guard" validate --rules "$rules" --data "$copy" --show-summary all 2>&1)" || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "broken-template: $name was NOT caught (cfn-guard passed)" >&2
    exit 1
  fi
  if ! grep -Eq "/$rule +FAIL" <<<"$out"; then
    echo "broken-template: $name failed, but not with $rule:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "broken-template: $name -> $rule FAIL (as it must)"
}

break_template wildcard-action IAM_NO_WILDCARD_ACTIONS \
  "                Action: sqs:SendMessage
                Resource: !GetAtt OrgAccountsDeadLetterQueue.Arn" \
  "                Action: \"*\"
                Resource: !GetAtt OrgAccountsDeadLetterQueue.Arn"

break_template unencrypted-queue SQS_QUEUES_ENCRYPTED \
  "      QueueName: !Sub \"\${ProjectName}-org-accounts-dlq\"
      KmsMasterKeyId: !Ref AlertKey" \
  "      QueueName: !Sub \"\${ProjectName}-org-accounts-dlq\""

break_template missing-dlq LAMBDA_ASYNC_FAILURES_KEPT \
  "        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt OrgAccountsDeadLetterQueue.Arn" \
  ""

break_template mutating-on-star IAM_MUTATING_ACTIONS_NOT_ON_STAR \
  "                Action: [sagemaker:ListDomains, sagemaker:ListApps, sagemaker:ListSpaces, sagemaker:ListUserProfiles]" \
  "                Action: [sagemaker:ListDomains, sagemaker:DeleteDomain]"

break_template custom-resource-timeout CUSTOM_RESOURCES_SET_SERVICE_TIMEOUT \
  "Resources:" \
  "Resources:
  UnboundedLookup:
    Type: Custom::OrgAccounts
    Properties:
      ServiceToken: !GetAtt OrgAccountsFunction.Arn
      OrganizationalUnitIds: [ou-ab12-11111111]"
