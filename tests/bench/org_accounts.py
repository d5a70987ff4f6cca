"""Python 3 + boto3 reference of `org-accounts` (Custom::OrgAccounts), written for `make bench` only.

The same logic and the same AWS calls as the Rust function: every OU is checked to exist
(DescribeOrganizationalUnit; ListRoots for a root id), then a breadth-first walk lists each parent's
accounts and child OUs (every page), keeps ACTIVE accounts, removes ExcludeAccountIds, and answers
CloudFormation on the ResponseURL (PUT, empty Content-Type) with AccountIds and AccountCount. Delete
owns nothing and answers SUCCESS. Any error answers FAILED with the reason: CloudFormation never hangs.
"""

import hashlib
import json
import logging
import urllib.request

import boto3

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger()

organizations = boto3.client("organizations")  # built once per cold start


def as_list(value):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


def pages(operation, key, **kwargs):
    for page in organizations.get_paginator(operation).paginate(**kwargs):
        yield from page[key]


def resolve(parents, recursive, exclude):
    for parent in parents:
        if parent.startswith("r-"):
            if parent not in {r["Id"] for r in pages("list_roots", "Roots")}:
                raise ValueError(f"{parent} not found (or not visible to this account)")
        else:
            try:
                organizations.describe_organizational_unit(OrganizationalUnitId=parent)
            except organizations.exceptions.OrganizationalUnitNotFoundException:
                raise ValueError(f"{parent} not found (or not visible to this account)")
    queue, visited, found = list(parents), set(), set()
    while queue:
        parent = queue.pop(0)
        if parent in visited:
            continue
        visited.add(parent)
        for account in pages("list_accounts_for_parent", "Accounts", ParentId=parent):
            if account.get("State", account.get("Status")) == "ACTIVE":
                found.add(account["Id"])
        if recursive:
            queue.extend(ou["Id"] for ou in pages("list_organizational_units_for_parent",
                                                   "OrganizationalUnits", ParentId=parent))
    return sorted(found - set(exclude))


def answer(event, status, physical_id, data=None, reason=None):
    body = {
        "Status": status, "PhysicalResourceId": physical_id, "StackId": event["StackId"],
        "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
        "Data": data or {},
    }
    if reason:
        body["Reason"] = reason[:1000]
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request).read()


def handler(event, context):
    props = event.get("ResourceProperties") or {}
    parents = sorted(set(as_list(props.get("OrganizationalUnitIds"))))
    recursive = str(props.get("Recursive", "true")).lower() != "false"
    exclude = sorted(set(as_list(props.get("ExcludeAccountIds"))))
    digest = hashlib.sha256(json.dumps([parents, recursive, exclude]).encode()).hexdigest()[:16]
    physical = event.get("PhysicalResourceId") or f"org-accounts-{digest}"
    try:
        if event["RequestType"] == "Delete":
            answer(event, "SUCCESS", physical)
            return {}
        if not parents:
            raise ValueError("OrganizationalUnitIds: give at least one OU id (ou-...) or root id (r-...)")
        accounts = resolve(parents, recursive, exclude)
        if not accounts and str(props.get("AllowEmpty", "false")).lower() != "true":
            raise ValueError(f"no ACTIVE account under {', '.join(parents)} (set AllowEmpty to allow it)")
        log.info(json.dumps({"message": "resolved", "accounts": len(accounts)}))
        answer(event, "SUCCESS", f"org-accounts-{digest}",
               {"AccountIds": ",".join(accounts), "AccountCount": str(len(accounts))})
    except Exception as e:
        log.info(json.dumps({"message": "failed", "error": str(e)}))
        answer(event, "FAILED", physical, reason=str(e))
    return {}
