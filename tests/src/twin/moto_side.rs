//! What SageMaker does in other services, done in moto: the domain's home EFS file system, its mount
//! targets and NFS security groups; EventBridge events. Plain HTTP in each service's protocol (EFS:
//! REST-JSON, EC2: Query/XML, EventBridge: awsJson1_1) keeps the test bed free of more SDK crates.

use serde_json::{Value, json};

use super::{REGION, Shared};

/// Side effects performed after the lock is released (they call moto).
#[derive(Debug, Clone)]
pub enum Effect {
    CreateHome {
        domain_id: String,
        domain_arn: String,
        vpc_id: String,
        subnets: Vec<String>,
        kms_key_id: Option<String>,
    },
    DeleteHome {
        file_system_id: String,
    },
    /// An event on `account`'s default bus (moto takes the account from `x-moto-account-id`).
    Event {
        account: String,
        detail_type: String,
        detail: Value,
        resources: Vec<String>,
    },
}

fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}

/// An EFS REST call; returns the JSON answer (Null when empty).
pub async fn efs(
    moto: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Option<Value> {
    let mut req = reqwest::Client::new()
        .request(method, format!("{moto}/2015-02-01/{path}"))
        .header("Authorization", auth("elasticfilesystem"));
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.ok()?;
    let text = resp.text().await.ok()?;
    serde_json::from_str(&text).ok().or(Some(Value::Null))
}

/// The S3 version id and ETag of an object in moto (path-style `HeadObject`); `None` when the object
/// cannot be read, a `None` version when the bucket is not versioned.
pub async fn s3_head(moto: &str, bucket: &str, key: &str) -> Option<(Option<String>, String)> {
    let resp = reqwest::Client::new()
        .head(format!("{moto}/{bucket}/{key}"))
        .header("Authorization", auth("s3"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned())
    };
    Some((
        header("x-amz-version-id").filter(|v| v != "null"),
        header("etag").unwrap_or_default(),
    ))
}

/// An EC2 Query API call; returns the XML text.
pub async fn ec2(moto: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let resp = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("Authorization", auth("ec2"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(urlencode(&form))
        .send()
        .await
        .ok()?;
    resp.text().await.ok()
}

/// The network of a VPC-only Studio domain, in moto: a VPC `10.<cidr>.0.0/16`, two subnets (us-east-1a
/// and b) and a security group named `group`. Returns (VPC id, subnet ids, security group id).
pub async fn studio_network(moto: &str, cidr: u8, group: &str) -> (String, Vec<String>, String) {
    let vpc = ec2(
        moto,
        &[
            ("Action", "CreateVpc"),
            ("CidrBlock", &format!("10.{cidr}.0.0/16")),
        ],
    )
    .await
    .and_then(|x| xml_value(&x, "vpcId"))
    .unwrap_or_default();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let xml = ec2(
            moto,
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", &format!("10.{cidr}.{i}.0/24")),
                ("AvailabilityZone", &format!("us-east-1{az}")),
            ],
        )
        .await;
        subnets.extend(xml.and_then(|x| xml_value(&x, "subnetId")));
    }
    let sg = ec2(
        moto,
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", group),
            ("GroupDescription", "Studio apps"),
            ("VpcId", &vpc),
        ],
    )
    .await
    .and_then(|x| xml_value(&x, "groupId"))
    .unwrap_or_default();
    (vpc, subnets, sg)
}

fn urlencode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>…</tag>` in `xml`.
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

async fn security_group(moto: &str, name: &str, vpc: &str, domain_arn: &str) -> Option<String> {
    let xml = ec2(
        moto,
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", name),
            (
                "GroupDescription",
                &format!("[DO NOT DELETE] Used by SageMaker for {domain_arn}"),
            ),
            ("VpcId", vpc),
        ],
    )
    .await?;
    xml_value(&xml, "groupId")
}

async fn nfs_rule(moto: &str, action: &str, group: &str, peer: &str) {
    ec2(
        moto,
        &[
            ("Action", action),
            ("GroupId", group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "2049"),
            ("IpPermissions.1.ToPort", "2049"),
            ("IpPermissions.1.Groups.1.GroupId", peer),
        ],
    )
    .await;
}

pub async fn apply(world: &Shared, effect: Effect) {
    let Some(moto) = world.lock().expect("twin state").moto.clone() else {
        return;
    };
    match effect {
        Effect::CreateHome {
            domain_id,
            domain_arn,
            vpc_id,
            subnets,
            kms_key_id,
        } => {
            let mut fs_req = json!({
                "CreationToken": format!("{domain_id}-home"),
                "PerformanceMode": "generalPurpose",
                "Encrypted": kms_key_id.is_some(),
                "Tags": [{"Key": "ManagedByAmazonSageMakerResource", "Value": domain_arn}],
            });
            if let Some(key) = &kms_key_id {
                fs_req["KmsKeyId"] = json!(key);
            }
            let Some(fs) = efs(&moto, reqwest::Method::POST, "file-systems", Some(fs_req)).await
            else {
                return;
            };
            let Some(fs_id) = fs["FileSystemId"].as_str().map(str::to_owned) else {
                return;
            };
            let inbound = security_group(
                &moto,
                &format!("security-group-for-inbound-nfs-{domain_id}"),
                &vpc_id,
                &domain_arn,
            )
            .await;
            let outbound = security_group(
                &moto,
                &format!("security-group-for-outbound-nfs-{domain_id}"),
                &vpc_id,
                &domain_arn,
            )
            .await;
            if let (Some(inbound), Some(outbound)) = (&inbound, &outbound) {
                nfs_rule(&moto, "AuthorizeSecurityGroupIngress", inbound, outbound).await;
                nfs_rule(&moto, "AuthorizeSecurityGroupEgress", outbound, inbound).await;
            }
            for subnet in &subnets {
                let mut mt = json!({"FileSystemId": fs_id, "SubnetId": subnet});
                if let Some(inbound) = &inbound {
                    mt["SecurityGroups"] = json!([inbound]);
                }
                efs(&moto, reqwest::Method::POST, "mount-targets", Some(mt)).await;
            }
            let mut w = world.lock().expect("twin state");
            let after = w.duration("domain.create");
            if let Some(d) = w.sm.domains.get_mut(&domain_id) {
                d.body["HomeEfsFileSystemId"] = json!(fs_id);
                // Pending lasts its full duration from when the home file system exists.
                if let Some((_, to)) = d.next.take() {
                    d.next = Some((std::time::Instant::now() + after, to));
                }
            }
        }
        Effect::DeleteHome { file_system_id } => {
            let listed = efs(
                &moto,
                reqwest::Method::GET,
                &format!("mount-targets?FileSystemId={file_system_id}"),
                None,
            )
            .await;
            let targets: Vec<String> = listed
                .as_ref()
                .and_then(|v| v["MountTargets"].as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["MountTargetId"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for id in targets {
                efs(
                    &moto,
                    reqwest::Method::DELETE,
                    &format!("mount-targets/{id}"),
                    None,
                )
                .await;
            }
            efs(
                &moto,
                reqwest::Method::DELETE,
                &format!("file-systems/{file_system_id}"),
                None,
            )
            .await;
        }
        Effect::Event {
            account,
            detail_type,
            detail,
            resources,
        } => {
            let entry = json!({
                "Source": "aws.sagemaker",
                "DetailType": detail_type,
                "Detail": detail.to_string(),
                "Resources": resources,
                "EventBusName": "default",
            });
            let _ = reqwest::Client::new()
                .post(format!("{moto}/"))
                .header("Authorization", auth("events"))
                .header("x-moto-account-id", account)
                .header("X-Amz-Target", "AWSEvents.PutEvents")
                .header("Content-Type", "application/x-amz-json-1.1")
                .body(json!({"Entries": [entry]}).to_string())
                .send()
                .await;
        }
    }
}

/// CloudWatch `DescribeAlarms` of `names` in moto, as the caller whose signed headers are given (moto
/// reads the account from the access key): (alarm name, state) pairs.
pub async fn alarm_states(
    moto: &str,
    headers: &[(String, String)],
    names: &[String],
) -> Option<Vec<(String, String)>> {
    let mut form: Vec<(&str, &str)> = vec![("Action", "DescribeAlarms"), ("Version", "2010-08-01")];
    let keys: Vec<String> = (1..=names.len())
        .map(|i| format!("AlarmNames.member.{i}"))
        .collect();
    for (k, n) in keys.iter().zip(names) {
        form.push((k, n));
    }
    let mut req = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(urlencode(&form));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let xml = req.send().await.ok()?.text().await.ok()?;
    let mut out = Vec::new();
    for member in xml.split("<member>").skip(1) {
        if let (Some(name), Some(state)) = (
            xml_value(member, "AlarmName"),
            xml_value(member, "StateValue"),
        ) {
            out.push((name, state));
        }
    }
    Some(out)
}

/// The account of the caller whose access key is `access_key`, as moto knows it (`GetCallerIdentity`:
/// the account of the role a key was issued for by `AssumeRole`, else moto's default account). Moto does
/// not check signatures, so the key alone identifies the caller.
pub async fn account_of(moto: &str, access_key: &str) -> Option<String> {
    let xml = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/20260101/{REGION}/sts/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    xml_value(&xml, "Account")
}

/// Whether IAM role `name` exists in `account` (moto's `GetRole` as that account).
pub async fn role_exists(moto: &str, account: &str, name: &str) -> bool {
    let resp = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", auth("iam"))
        .header("x-moto-account-id", account)
        .body(urlencode(&[
            ("Action", "GetRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
        ]))
        .send()
        .await;
    resp.is_ok_and(|r| r.status().is_success())
}
