//! `org-accounts` (`Custom::OrgAccounts`) through the harness, the real binary against moto with a
//! seeded organization (nested 4 deep, 40 accounts, pages of 20, suspended accounts).

use std::time::Duration;

use serde_json::{Value, json};
use shared::cfn::request::FAILED_CREATE_PREFIX;
use testbed::cfn::request;
use testbed::fixture::Fixture;
use testbed::harness::{CfnPut, Harness};
use testbed::org::{SeededOrg, seed};

const TYPE: &str = "Custom::OrgAccounts";

struct Bed {
    h: Harness,
    org: SeededOrg,
    _fx: Fixture,
}

async fn bed() -> Bed {
    let fx = Fixture::start().await;
    let org = seed(&fx.config).await;
    Bed {
        h: fx.start_function("OrgAccountsFunction").await,
        org,
        _fx: fx,
    }
}

impl Bed {
    async fn send(&self, key: &str, kind: &str, props: Value, physical: Option<&str>) -> Value {
        let event = request(
            kind,
            &self.h.response_url(key),
            TYPE,
            "Accounts",
            props,
            physical,
            None,
        );
        self.h.invoke_async(&event);
        let r: Vec<CfnPut> = self.h.wait_for_response(key, Duration::from_secs(30)).await;
        assert_eq!(r.len(), 1, "exactly one response: {r:#?}");
        r[0].body.clone()
    }
}

fn ids(body: &Value) -> Vec<String> {
    let joined = body["Data"]["AccountIds"].as_str().expect("AccountIds");
    joined
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn create_update_delete_resolve_nested_ous_to_active_accounts() {
    let b = bed().await;
    let (staging, prod) = (b.org.ou("Staging"), b.org.ou("Production"));

    let created = b
        .send(
            "create",
            "Create",
            json!({"OrganizationalUnitIds": [staging, prod]}),
            None,
        )
        .await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let expected = b.org.expected(&["Staging", "Production"], true);
    assert_eq!(expected.len(), 34, "3+2+2+1 nested staging + 26 production");
    assert_eq!(
        ids(&created),
        expected,
        "exact, sorted, unique, ACTIVE only"
    );
    assert_eq!(created["Data"]["AccountCount"], "34");
    for closed in &b.org.suspended {
        assert!(
            !ids(&created).contains(closed),
            "suspended {closed} returned"
        );
    }
    let first_id = created["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(first_id.starts_with("org-accounts-"));

    // Same query in another order and as a comma-separated string: same physical id.
    let again = b
        .send(
            "again",
            "Create",
            json!({"OrganizationalUnitIds": format!("{prod}, {staging}")}),
            None,
        )
        .await;
    assert_eq!(again["PhysicalResourceId"], first_id.as_str());

    // Update to other OUs: new ids, new physical id (a harmless replacement).
    let updated = b
        .send(
            "update",
            "Update",
            json!({"OrganizationalUnitIds": [b.org.ou("Sandbox")]}),
            Some(&first_id),
        )
        .await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(ids(&updated), b.org.expected(&["Sandbox"], true));
    assert_eq!(
        ids(&updated).len(),
        1,
        "the one account in Box21, on the 2nd page of Sandbox's OUs"
    );
    let second_id = updated["PhysicalResourceId"].as_str().unwrap();
    assert_ne!(second_id, first_id);

    let deleted = b
        .send(
            "delete",
            "Delete",
            json!({"OrganizationalUnitIds": [b.org.ou("Sandbox")]}),
            Some(second_id),
        )
        .await;
    assert_eq!(deleted["Status"], "SUCCESS");
    assert_eq!(deleted["PhysicalResourceId"], second_id);
    // One metric document per response (CloudWatch EMF in the logs): its status, its PUT attempts.
    let responses = b.h.metric("Responses", "SUCCESS");
    assert_eq!(responses.len(), 4, "one per request: {:#?}", b.h.metrics());
    assert_eq!(responses[0]["PutAttempts"], 1.0);
    assert_eq!(responses[0]["RequestType"], "Create");
    assert_eq!(responses[0]["Function"], "secure-mlops-org-accounts");
    // The namespace is the template's (Globals: METRICS_NAMESPACE = ProjectName), as the dashboard
    // searches it.
    assert_eq!(
        responses[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "secure-mlops"
    );
}

#[tokio::test]
async fn recursion_exclusion_root_and_assumed_role() {
    let b = bed().await;
    let flat = b
        .send(
            "flat",
            "Create",
            json!({"OrganizationalUnitIds": b.org.ou("Staging"), "Recursive": "false"}),
            None,
        )
        .await;
    assert_eq!(ids(&flat), b.org.expected(&["Staging"], false));
    assert_eq!(ids(&flat).len(), 3);

    let all = b.org.expected(&["Staging", "Production", "Sandbox"], true);
    let excluded = [all[0].clone(), all[5].clone()];
    let root = b
        .send(
            "root",
            "Create",
            json!({"OrganizationalUnitIds": [b.org.root], "ExcludeAccountIds": excluded}),
            None,
        )
        .await;
    let got = ids(&root);
    // The root also holds the management account.
    assert_eq!(got.len(), all.len() - 2 + 1, "{got:?}");
    assert!(
        all.iter()
            .filter(|a| !excluded.contains(a))
            .all(|a| got.contains(a))
    );
    assert!(excluded.iter().all(|a| !got.contains(a)));

    let assumed = b
        .send(
            "assumed",
            "Create",
            json!({"OrganizationalUnitIds": [b.org.ou("Production")], "AssumeRoleArn": "arn:aws:iam::123456789012:role/OrgReader"}),
            None,
        )
        .await;
    assert_eq!(assumed["Status"], "SUCCESS", "{assumed}");
    assert_eq!(ids(&assumed), b.org.expected(&["Production"], true));
}

#[tokio::test]
async fn bad_properties_fail_naming_the_property() {
    let b = bed().await;
    let cases = [
        (json!({}), "missing field `OrganizationalUnitIds`"),
        (
            json!({"OrganizationalUnitIds": [b.org.ou("Staging")], "Recurse": "true"}),
            "unknown field `Recurse`",
        ),
        (
            json!({"OrganizationalUnitIds": ["ou-NOPE"]}),
            "OrganizationalUnitIds",
        ),
        (
            json!({"OrganizationalUnitIds": [b.org.ou("Staging")], "Recursive": "yes"}),
            "Recursive",
        ),
        (
            json!({"OrganizationalUnitIds": [b.org.ou("Staging")], "ExcludeAccountIds": "12"}),
            "ExcludeAccountIds",
        ),
        (
            json!({"OrganizationalUnitIds": ""}),
            "OrganizationalUnitIds: give at least one",
        ),
    ];
    for (i, (props, needle)) in cases.into_iter().enumerate() {
        let body = b.send(&format!("bad{i}"), "Create", props, None).await;
        assert_eq!(body["Status"], "FAILED");
        let reason = body["Reason"].as_str().unwrap();
        assert!(reason.contains(needle), "case {i}: {reason}");
        assert!(
            body["PhysicalResourceId"]
                .as_str()
                .unwrap()
                .starts_with(FAILED_CREATE_PREFIX)
        );
    }
}

#[tokio::test]
async fn an_unknown_ou_or_an_empty_result_fails_naming_it() {
    let b = bed().await;
    let missing = "ou-zzzz-zzzzzzzz";
    let body = b
        .send(
            "unknown",
            "Create",
            json!({"OrganizationalUnitIds": [b.org.ou("Staging"), missing]}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains(missing) && reason.contains("does not exist"),
        "{reason}"
    );

    let empty_ou = b.org.ou("Sandbox/Box01");
    let body = b
        .send(
            "empty",
            "Create",
            json!({"OrganizationalUnitIds": empty_ou}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("AllowEmpty"),
        "{body}"
    );
    let body = b
        .send(
            "allowed",
            "Create",
            json!({"OrganizationalUnitIds": empty_ou, "AllowEmpty": "true"}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["Data"]["AccountCount"], "0");
    assert_eq!(body["Data"]["AccountIds"], "");
}
