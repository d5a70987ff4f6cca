//! Step 3 and its teardown: a VPC-only Studio domain, two user profiles, a user at work; then the
//! profiles (their apps first) and the domain with its home EFS go through their custom resources.

use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::AppType;
use serde_json::{Value, json};

use crate::world::World;
use crate::{Story, physical, summary};

const DOMAIN: &str = "Custom::StudioDomain";
const PROFILE: &str = "Custom::StudioUserProfile";
const USERS: [&str; 2] = ["data-scientist-1", "data-scientist-2"];

pub struct Studio {
    props: Value,
    domain_id: String,
    profiles: Vec<(Value, String)>,
    home: String,
}

pub async fn up(story: &mut Story, w: &World) -> Studio {
    let t = Instant::now();
    // Teardown deletes the home EFS too: the demo leaves nothing behind (the default is Retain).
    let mut props = w.studio_props.clone();
    props["HomeEfsFileSystem"] = json!("Delete");
    let body = w
        .cfn(
            &w.domain_fn,
            "domain",
            "Create",
            DOMAIN,
            props.clone(),
            None,
        )
        .await;
    let domain_id = physical(&body);
    let home = body["Data"]["HomeEfsFileSystemId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    story.record(
        "(3) Custom::StudioDomain Create (VpcOnly, until InService)",
        "studio-domain",
        body["Status"] == "SUCCESS" && !home.is_empty(),
        format!("{} home EFS {home}", summary(&body)),
        t.elapsed(),
    );
    let mut profiles = Vec::new();
    for user in USERS {
        let t = Instant::now();
        let props = json!({"DomainId": domain_id, "UserProfileName": user});
        let body = w
            .cfn(&w.profile_fn, user, "Create", PROFILE, props.clone(), None)
            .await;
        story.record(
            &format!("   Custom::StudioUserProfile Create: {user}"),
            "studio-user-profile",
            body["Status"] == "SUCCESS",
            summary(&body),
            t.elapsed(),
        );
        profiles.push((props, physical(&body)));
    }
    let app =
        w.sm.create_app()
            .domain_id(&domain_id)
            .user_profile_name(USERS[0])
            .app_type(AppType::JupyterServer)
            .app_name("default")
            .send()
            .await;
    story.record(
        "   a data scientist opens Studio (an app runs)",
        "-",
        app.is_ok(),
        String::new(),
        Duration::ZERO,
    );
    Studio {
        props,
        domain_id,
        profiles,
        home,
    }
}

pub async fn down(story: &mut Story, w: &World, studio: Studio) {
    for (i, (props, arn)) in studio.profiles.into_iter().enumerate() {
        let t = Instant::now();
        let body = w
            .cfn(
                &w.profile_fn,
                &format!("profile-del-{i}"),
                "Delete",
                PROFILE,
                props,
                Some(&arn),
            )
            .await;
        story.record(
            &format!("(6) Custom::StudioUserProfile Delete: {}", USERS[i]),
            "studio-user-profile",
            body["Status"] == "SUCCESS",
            if i == 0 {
                format!("{} (its running app first)", summary(&body))
            } else {
                summary(&body)
            },
            t.elapsed(),
        );
    }
    let t = Instant::now();
    let body = w
        .cfn(
            &w.domain_fn,
            "domain-del",
            "Delete",
            DOMAIN,
            studio.props,
            Some(&studio.domain_id),
        )
        .await;
    let gone =
        w.sm.describe_domain()
            .domain_id(&studio.domain_id)
            .send()
            .await
            .is_err();
    story.record(
        "   Custom::StudioDomain Delete (HomeEfsFileSystem: Delete)",
        "studio-domain",
        body["Status"] == "SUCCESS" && gone,
        format!("{}; home EFS {} deleted", summary(&body), studio.home),
        t.elapsed(),
    );
}
