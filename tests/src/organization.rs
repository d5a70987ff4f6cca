//! The organization-wide detective control deployed locally: an AWS Organization in moto, member
//! accounts with what the member stack set (`infra/stacksets/detective-member.yaml`) creates in each —
//! its forwarding rule, with the template's own pattern, targeting the central bus, and its responder
//! role — and clients that act as a member account (moto and the twin tell accounts apart by the access
//! key of an assumed role).

use aws_config::SdkConfig;
use aws_sdk_organizations::Client;
use serde_json::{Value, json};

use crate::events::call_as;
use crate::stack::Stack;

/// The member stack set's template.
pub fn member_template() -> Stack {
    Stack::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../infra/stacksets/detective-member.yaml"),
    )
    .unwrap_or_else(|e| panic!("detective-member.yaml: {e}"))
}

/// An organization: the watched OU (`ML`, the control's `MemberOUs`) and one it does not watch
/// (`Sandbox`), with named accounts in each.
pub struct Organization {
    pub id: String,
    pub watched_ou: String,
    pub other_ou: String,
    /// (name, account id) of the watched OU's accounts, then the other OU's.
    pub accounts: Vec<(String, String)>,
}

impl Organization {
    /// Creates the organization (the caller's account is its management account) with `watched`
    /// accounts in `ML` and `other` accounts in `Sandbox`.
    pub async fn create(config: &SdkConfig, watched: &[&str], other: &[&str]) -> Organization {
        let client = Client::new(config);
        let (id, root) = crate::org::create(&client).await;
        let watched_ou = crate::org::ou(&client, &root, "ML").await;
        let other_ou = crate::org::ou(&client, &root, "Sandbox").await;
        let mut accounts = Vec::new();
        for (names, ou) in [(watched, &watched_ou), (other, &other_ou)] {
            for name in names {
                let id = crate::org::account(&client, &root, ou, name).await;
                accounts.push(((*name).to_owned(), id));
            }
        }
        Organization {
            id,
            watched_ou,
            other_ou,
            accounts,
        }
    }

    /// The id of the account named `name`.
    pub fn account(&self, name: &str) -> &str {
        self.accounts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
            .unwrap_or_else(|| panic!("no account {name}"))
    }
}

/// The SDK configuration of `config` acting in `account` (a role assumed in moto, which lets anyone
/// assume any role: the test's own access, not the control's).
pub async fn acting_in(config: &SdkConfig, account: &str) -> SdkConfig {
    let out = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("test")
        .send()
        .await
        .expect("AssumeRole");
    with_credentials(config, out.credentials().expect("credentials"))
}

/// `config` acting with the credentials `AssumeRole` returned.
pub fn with_credentials(config: &SdkConfig, creds: &aws_sdk_sts::types::Credentials) -> SdkConfig {
    config
        .to_builder()
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
            aws_sdk_sts::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_owned()),
                None,
                "test-assumed-role",
            ),
        ))
        .build()
}

/// Deploys what the member stack set creates in `account` (of the central `project`): the forwarding
/// rule (its pattern from the template) targeting `central_bus_arn`, and, when `responder`, the
/// responder role the central function assumes.
pub async fn deploy_member(
    moto: &str,
    account: &str,
    project: &str,
    central_bus_arn: &str,
    responder: bool,
) {
    let member = member_template().parameter("ProjectName", project);
    let rule = member.resource_doc("ForwardRule").expect("ForwardRule");
    let pattern = member
        .resolve(&rule["Properties"]["EventPattern"])
        .expect("the forward rule's pattern resolves")
        .unwrap_or(Value::Null);
    let name = member.physical("ForwardRule");
    call_as(
        moto,
        Some(account),
        "AWSEvents.PutRule",
        "1.1",
        json!({"Name": name, "EventPattern": pattern.to_string(), "State": "ENABLED"}),
    )
    .await;
    call_as(
        moto,
        Some(account),
        "AWSEvents.PutTargets",
        "1.1",
        json!({"Rule": name, "Targets": [{"Id": "central-detective-bus", "Arn": central_bus_arn}]}),
    )
    .await;
    if responder {
        let role = member.physical("ResponderRole");
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
        iam(
            moto,
            account,
            &[
                ("Action", "CreateRole"),
                ("RoleName", &role),
                ("AssumeRolePolicyDocument", &trust.to_string()),
            ],
        )
        .await;
    }
}

/// Deletes the responder role of `account` (a member whose role someone removed).
pub async fn delete_responder(moto: &str, account: &str, project: &str) {
    let role = member_template()
        .parameter("ProjectName", project)
        .physical("ResponderRole");
    iam(
        moto,
        account,
        &[("Action", "DeleteRole"), ("RoleName", &role)],
    )
    .await;
}

/// An IAM Query call to moto as `account`.
async fn iam(moto: &str, account: &str, params: &[(&str, &str)]) {
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut body = String::from("Version=2010-05-08");
    for (k, v) in params {
        body.push_str(&format!("&{k}={}", encode(v)));
    }
    let response = reqwest::Client::new()
        .post(format!("{moto}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("x-moto-account-id", account)
        .body(body)
        .send()
        .await
        .expect("moto reachable");
    assert!(
        response.status().is_success(),
        "IAM {params:?} in {account}: {}",
        response.text().await.unwrap_or_default()
    );
}
