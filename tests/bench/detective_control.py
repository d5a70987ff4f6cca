"""Python 3 + boto3 reference of `detective-control`, written for `make bench` only.

The same logic and the same AWS calls as the Rust function on the path the benchmark measures (a
CloudTrail `Create*` event): the same 8 checks on the request parameters, an idempotency claim in
DynamoDB (conditional PutItem), stop or delete by kind, one SNS alert with the same subject and body,
Security Hub findings when enabled. Compliant events make no AWS call. (The sweep and `Update*` events,
which first describe the resource, are not part of the benchmark and not implemented here.)
Configuration: the Rust function's environment (MODE, CHECKS, ALERT_TOPIC_ARN, SECURITY_HUB,
IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_HOURS).
"""

import datetime
import json
import logging
import os
import time

import boto3
from botocore.exceptions import ClientError

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger()

# One client per service per cold start, as a Lambda should.
sagemaker = boto3.client("sagemaker")
sns = boto3.client("sns")
dynamodb = boto3.client("dynamodb")
securityhub = boto3.client("securityhub")

MODE = os.environ.get("MODE", "enforce")
TOPIC = os.environ["ALERT_TOPIC_ARN"]
SECURITY_HUB = os.environ.get("SECURITY_HUB", "false") == "true"
TABLE = os.environ.get("IDEMPOTENCY_TABLE")
TTL = int(os.environ.get("IDEMPOTENCY_TTL_HOURS", "24")) * 3600

# event name -> (kind label, ARN resource type, name member, action, ASFF type)
KINDS = {
    "CreateTrainingJob": ("training job", "training-job", "trainingJobName", "stop", "AwsSageMakerTrainingJob"),
    "CreateProcessingJob": ("processing job", "processing-job", "processingJobName", "stop", "Other"),
    "CreateTransformJob": ("transform job", "transform-job", "transformJobName", "stop", "Other"),
    "CreateHyperParameterTuningJob": ("tuning job", "hyper-parameter-tuning-job", "hyperParameterTuningJobName", "stop", "Other"),
    "CreateModel": ("model", "model", "modelName", "delete", "AwsSageMakerModel"),
    "CreateNotebookInstance": ("notebook instance", "notebook-instance", "notebookInstanceName", "stop", "AwsSageMakerNotebookInstance"),
    "CreateEndpointConfig": ("endpoint config", "endpoint-config", "endpointConfigName", "delete", "AwsSageMakerEndpointConfig"),
    "CreateDomain": ("domain", "domain", "domainName", "none", "Other"),
}

STOP = {
    "training job": lambda n: sagemaker.stop_training_job(TrainingJobName=n),
    "processing job": lambda n: sagemaker.stop_processing_job(ProcessingJobName=n),
    "transform job": lambda n: sagemaker.stop_transform_job(TransformJobName=n),
    "tuning job": lambda n: sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=n),
    "notebook instance": lambda n: sagemaker.stop_notebook_instance(NotebookInstanceName=n),
    "model": lambda n: sagemaker.delete_model(ModelName=n),
    "endpoint config": lambda n: sagemaker.delete_endpoint_config(EndpointConfigName=n),
}


def get(params, *path):
    for key in path:
        if not isinstance(params, dict):
            return None
        params = params.get(key)
    return params


def observe(kind, p):
    """The facts the checks judge, from the camelCase requestParameters."""
    def text(*path):
        v = get(p, *path)
        return v if isinstance(v, str) and v else None

    def flag(*path):
        v = get(p, *path)
        return v if isinstance(v, bool) else None

    def subnets(*path):
        v = get(p, *path)
        return [s for s in v if isinstance(s, str)] if isinstance(v, list) else []

    if kind == "training job":
        return dict(subnets=subnets("vpcConfig", "subnets"), isolation=flag("enableNetworkIsolation"),
                    icte=flag("enableInterContainerTrafficEncryption"),
                    volume=text("resourceConfig", "volumeKmsKeyId"), output=text("outputDataConfig", "kmsKeyId"))
    if kind == "processing job":
        return dict(subnets=subnets("networkConfig", "vpcConfig", "subnets"),
                    isolation=flag("networkConfig", "enableNetworkIsolation"),
                    icte=flag("networkConfig", "enableInterContainerTrafficEncryption"),
                    volume=text("processingResources", "clusterConfig", "volumeKmsKeyId"),
                    output=text("processingOutputConfig", "kmsKeyId"))
    if kind == "transform job":
        return dict(volume=text("transformResources", "volumeKmsKeyId"), output=text("transformOutput", "kmsKeyId"))
    if kind == "tuning job":
        definitions = [d for d in (get(p, "trainingJobDefinitions") or []) if isinstance(d, dict)]
        if isinstance(get(p, "trainingJobDefinition"), dict):
            definitions.append(p["trainingJobDefinition"])
        facts = [observe("training job", d) for d in definitions]
        if not facts:
            return {}
        weakest = facts[0]
        for f in facts[1:]:
            weakest = dict(
                subnets=weakest["subnets"] if weakest["subnets"] and f["subnets"] else [],
                isolation=None if weakest["isolation"] is None and f["isolation"] is None
                else bool(weakest["isolation"] and f["isolation"]),
                icte=None if weakest["icte"] is None and f["icte"] is None else bool(weakest["icte"] and f["icte"]),
                volume=weakest["volume"] if weakest["volume"] == f["volume"] else None,
                output=weakest["output"] if weakest["output"] == f["output"] else None)
        return weakest
    if kind == "model":
        return dict(subnets=subnets("vpcConfig", "subnets"), isolation=flag("enableNetworkIsolation"))
    if kind == "notebook instance":
        subnet = text("subnetId")
        return dict(subnets=[subnet] if subnet else [], volume=text("kmsKeyId"),
                    internet=text("directInternetAccess"), root=text("rootAccess"))
    if kind == "endpoint config":
        return dict(volume=text("kmsKeyId"))
    if kind == "domain":
        return dict(subnets=subnets("subnetIds"), access=text("appNetworkAccessType"))
    return {}


JOBS = ["training job", "processing job", "tuning job"]
RULES = [
    ("vpc", "runs in a VPC (VpcConfig with subnets; SubnetId for notebooks)", "HIGH",
     JOBS + ["model", "notebook instance"], {"notebook instance": "SageMaker.2"}, lambda o: bool(o.get("subnets"))),
    ("network-isolation", "EnableNetworkIsolation is true", "HIGH",
     ["training job", "model"], {"model": "SageMaker.5"}, lambda o: o.get("isolation") is True),
    ("inter-container-encryption", "EnableInterContainerTrafficEncryption is true", "MEDIUM",
     JOBS, {}, lambda o: o.get("icte") is True),
    ("volume-kms", "storage volumes are encrypted with a KMS key of yours (VolumeKmsKeyId / KmsKeyId)", "MEDIUM",
     JOBS + ["transform job", "notebook instance", "endpoint config"], {}, lambda o: o.get("volume") is not None),
    ("output-kms", "output in S3 is encrypted with a KMS key of yours (KmsKeyId of the output)", "MEDIUM",
     ["training job", "processing job", "transform job"], {}, lambda o: o.get("output") is not None),
    ("notebook-direct-internet", "DirectInternetAccess is Disabled (SageMaker's default is Enabled)", "HIGH",
     ["notebook instance"], {"notebook instance": "SageMaker.1"}, lambda o: o.get("internet") == "Disabled"),
    ("notebook-root-access", "RootAccess is Disabled (SageMaker's default is Enabled)", "HIGH",
     ["notebook instance"], {"notebook instance": "SageMaker.3"}, lambda o: o.get("root") == "Disabled"),
    ("domain-vpc-only", "AppNetworkAccessType is VpcOnly (SageMaker's default is PublicInternetOnly)", "HIGH",
     ["domain"], {}, lambda o: o.get("access") == "VpcOnly"),
]
ENABLED = {c.strip() for c in os.environ.get("CHECKS", "all").split(",") if c.strip()}


def claim(key):
    if not TABLE:
        return True
    now = int(time.time())
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"id": {"S": key}, "expiresAt": {"N": str(now + TTL)}},
            ConditionExpression="attribute_not_exists(id) OR expiresAt < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def release(key):
    if TABLE:
        dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": key}})


def respond(kind, action, name):
    if MODE == "alert":
        return "none", "not-taken", "MODE is alert: the resource was left as it is"
    if action == "none":
        return "none", "not-taken", "a Studio domain is never deleted by this control: it holds user data"
    try:
        STOP[kind](name)
        return action, "done", ("stop requested" if action == "stop" else "deleted")
    except ClientError as e:
        code, message = e.response["Error"].get("Code"), e.response["Error"].get("Message", "")
        lower = message.lower()
        if code == "ResourceNotFound" or "could not find" in lower or "not found" in lower or "does not exist" in lower:
            return action, "already-gone", message
        if "status (pending)" in lower:
            return action, "deferred", message
        if "status" in lower and ("completed" in lower or "stopped" in lower or "failed" in lower):
            return action, "already-inactive", message
        return action, "failed", f"{code}: {message}"


def subject(kind, verb, name, checks, account, region):
    text = f"SageMaker {kind} {verb}: {name} [{', '.join(checks)}] ({account} {region})"
    clean = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    return clean if len(clean) <= 100 else clean[:97] + "..."


def handler(event, context):
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise ValueError("not an EventBridge event: no detail object")
    event_id = detail.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("detail.eventID is missing")
    name_of_call = detail.get("eventName")
    if detail.get("errorCode"):
        return {"skipped": f"the call failed ({detail['errorCode']})"}
    if name_of_call not in KINDS:
        return {"ignored": f"{name_of_call} is not a watched call"}
    kind, arn_type, member, action, asff = KINDS[name_of_call]
    params = detail.get("requestParameters") or {}
    name = params.get(member) if isinstance(params, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"event {event_id} ({name_of_call}): requestParameters do not name the {kind}")
    account = detail.get("recipientAccountId") or event.get("account") or ""
    region = detail.get("awsRegion") or event.get("region") or ""
    arn = f"arn:aws:sagemaker:{region}:{account}:{arn_type}/{name.lower()}"
    facts = observe(kind, params)
    failed = [r for r in RULES if ("all" in ENABLED or r[0] in ENABLED) and kind in r[3] and not r[5](facts)]
    if not failed:
        log.info(json.dumps({"message": "compliant", "arn": arn}))
        return {"compliant": arn}
    key = f"event#{event_id}"
    if not claim(key):
        return {"duplicate": event_id}
    act, result, said = respond(kind, action, name)
    checks = [r[0] for r in failed]
    verb = {"stop": "stopped", "delete": "deleted"}.get(act, "found") if result == "done" else (
        "found" if act == "none" else f"{act.upper()} FAILED" if result == "failed" else "found")
    identity = detail.get("userIdentity") or {}
    body = {
        "source": "secure-mlops detective-control", "trigger": "event", "account": account, "region": region,
        "resourceType": kind, "resourceName": name, "resourceArn": arn, "eventName": name_of_call,
        "eventId": event_id, "eventTime": detail.get("eventTime"), "principal": identity.get("arn"),
        "sourceIp": detail.get("sourceIPAddress"),
        "failedChecks": [{"id": r[0], "requires": r[1], "severity": r[2], "securityHubControl": r[4].get(kind)}
                         for r in failed],
        "mode": MODE, "action": act, "result": result, "detail": said,
    }
    try:
        sns.publish(TopicArn=TOPIC, Subject=subject(kind, verb, name, checks, account, region),
                    Message=json.dumps(body))
        if SECURITY_HUB:
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            resolved = result in ("done", "already-gone", "already-inactive") and act != "none"
            securityhub.batch_import_findings(Findings=[{
                "SchemaVersion": "2018-10-08", "Id": f"{arn}/secure-mlops/{r[0]}",
                "ProductArn": f"arn:aws:securityhub:{region}:{account}:product/{account}/default",
                "GeneratorId": f"secure-mlops/detective-control/{r[0]}", "AwsAccountId": account,
                "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
                "CreatedAt": now, "UpdatedAt": now, "Severity": {"Label": r[2]},
                "Title": f"SageMaker {kind} {name} fails {r[0]}",
                "Description": f"Required: {r[1]}. Action: {result} - {said}.",
                "Resources": [{"Type": asff, "Id": arn, "Region": region}],
                "Compliance": {"Status": "FAILED"},
                "RecordState": "ARCHIVED" if resolved else "ACTIVE",
                "ProductFields": {"secure-mlops/check": r[0], "secure-mlops/event-id": event_id},
            } for r in failed])
    except Exception:
        release(key)
        raise
    summary = {"arn": arn, "checks": checks, "action": act, "result": result, "detail": said}
    log.info(json.dumps({"message": "non-compliant resource handled", **summary}))
    return {"findings": [summary]}
