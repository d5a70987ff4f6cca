//! An AWS Organizations tree in the emulator, big enough that list calls span pages (moto returns 20
//! items a page) and nested four levels deep, with suspended accounts that must not be returned.
//!
//! ```text
//! root
//! ├── Staging (3)            ── Teams (2) ── ML (2) ── Deep (1 + 1 suspended)
//! ├── Production (26 + 1 suspended)
//! └── Sandbox ── Box01 … Box22 (Box21 holds 1 account)
//! ```

use std::collections::BTreeMap;

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::OrganizationFeatureSet;

/// What was created: OU ids by path ("Staging/Teams/ML") and the ACTIVE account ids under each OU
/// (directly, not nested).
pub struct SeededOrg {
    pub root: String,
    pub ous: BTreeMap<String, String>,
    pub active: BTreeMap<String, Vec<String>>,
    pub suspended: Vec<String>,
}

impl SeededOrg {
    pub fn ou(&self, path: &str) -> &str {
        &self.ous[path]
    }

    /// Sorted ACTIVE account ids of the OUs at `paths`, including nested ones when `recursive`.
    pub fn expected(&self, paths: &[&str], recursive: bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .active
            .iter()
            .filter(|(ou, _)| {
                paths
                    .iter()
                    .any(|p| ou.as_str() == *p || (recursive && ou.starts_with(&format!("{p}/"))))
            })
            .flat_map(|(_, ids)| ids.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

pub async fn account(client: &Client, root: &str, ou: &str, name: &str) -> String {
    let created = client
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .expect("CreateAccount");
    let id = created
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("account id")
        .to_owned();
    client
        .move_account()
        .account_id(&id)
        .source_parent_id(root)
        .destination_parent_id(ou)
        .send()
        .await
        .expect("MoveAccount");
    id
}

pub async fn ou(client: &Client, parent: &str, name: &str) -> String {
    client
        .create_organizational_unit()
        .parent_id(parent)
        .name(name)
        .send()
        .await
        .expect("CreateOrganizationalUnit")
        .organizational_unit()
        .and_then(|o| o.id())
        .expect("OU id")
        .to_owned()
}

/// Creates an organization (all features) whose management account is the caller's: its id and
/// its root's id.
pub async fn create(client: &Client) -> (String, String) {
    let org = client
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .expect("CreateOrganization");
    let id = org
        .organization()
        .and_then(|o| o.id())
        .expect("organization id")
        .to_owned();
    let root = client
        .list_roots()
        .send()
        .await
        .expect("ListRoots")
        .roots()
        .first()
        .and_then(|r| r.id())
        .expect("root id")
        .to_owned();
    (id, root)
}

/// Creates the organization shown in the module docs.
pub async fn seed(config: &aws_config::SdkConfig) -> SeededOrg {
    let client = Client::new(config);
    let (_, root) = create(&client).await;
    let mut org = SeededOrg {
        root: root.clone(),
        ous: BTreeMap::new(),
        active: BTreeMap::new(),
        suspended: Vec::new(),
    };
    let parent_of = |path: &str| -> String {
        path.rsplit_once('/')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default()
    };
    let layout: [(&str, usize); 6] = [
        ("Staging", 3),
        ("Staging/Teams", 2),
        ("Staging/Teams/ML", 2),
        ("Staging/Teams/ML/Deep", 1),
        ("Production", 26),
        ("Sandbox", 0),
    ];
    for (path, count) in layout {
        let parent = match parent_of(path).as_str() {
            "" => root.clone(),
            p => org.ous[p].clone(),
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        let id = ou(&client, &parent, name).await;
        org.ous.insert(path.to_owned(), id.clone());
        let mut ids = Vec::new();
        for i in 0..count {
            let label = format!("{}-{i:02}", path.replace('/', "-").to_lowercase());
            ids.push(account(&client, &root, &id, &label).await);
        }
        org.active.insert(path.to_owned(), ids);
    }
    for i in 1..=22 {
        let path = format!("Sandbox/Box{i:02}");
        let id = ou(&client, &org.ous["Sandbox"].clone(), &format!("Box{i:02}")).await;
        org.ous.insert(path.clone(), id.clone());
        let ids = if i == 21 {
            vec![account(&client, &root, &id, "sandbox-box21").await]
        } else {
            vec![]
        };
        org.active.insert(path, ids);
    }
    for path in ["Staging/Teams/ML/Deep", "Production"] {
        let id = org.ous[path].clone();
        let closed = account(&client, &root, &id, &format!("closed-{}", path.len())).await;
        client
            .close_account()
            .account_id(&closed)
            .send()
            .await
            .expect("CloseAccount");
        org.suspended.push(closed);
    }
    org
}
