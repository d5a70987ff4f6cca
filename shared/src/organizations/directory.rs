//! The account lookup itself, free of AWS types: walk the requested roots/OUs (and their nested OUs
//! when recursive), keep ACTIVE accounts, drop the excluded ones, sort and de-duplicate.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;

use crate::Error;

use crate::ids::ParentId;

/// An account as the lookup needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub active: bool,
}

/// What the lookup needs from AWS Organizations. Each call returns the complete (all pages) list.
pub trait Directory: Sync {
    /// Fails with an error naming `parent` when it does not exist or is not visible.
    fn ensure_exists(&self, parent: &ParentId) -> impl Future<Output = Result<(), Error>> + Send;
    fn child_ous(&self, parent: &str) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    fn accounts(&self, parent: &str) -> impl Future<Output = Result<Vec<Account>, Error>> + Send;
}

/// The sorted, unique ids of the ACTIVE accounts under `parents`, minus `exclude`.
pub async fn resolve(
    directory: &impl Directory,
    parents: &[ParentId],
    recursive: bool,
    exclude: &[String],
) -> Result<Vec<String>, Error> {
    for parent in parents {
        directory.ensure_exists(parent).await?;
    }
    let mut queue: VecDeque<String> = parents.iter().map(|p| p.as_str().to_owned()).collect();
    let mut visited = HashSet::new();
    let mut found = BTreeSet::new();
    while let Some(parent) = queue.pop_front() {
        if !visited.insert(parent.clone()) {
            continue; // an OU listed twice, or nested under another listed one
        }
        for account in directory.accounts(&parent).await? {
            if account.active {
                found.insert(account.id);
            }
        }
        if recursive {
            queue.extend(directory.child_ous(&parent).await?);
        }
    }
    for id in exclude {
        found.remove(id);
    }
    Ok(found.into_iter().collect())
}

#[cfg(test)]
pub mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// An in-memory organization: parent → (child OUs, accounts). Counts calls.
    #[derive(Default)]
    pub struct Tree {
        pub children: HashMap<String, Vec<String>>,
        pub accounts: HashMap<String, Vec<Account>>,
        pub calls: Mutex<u32>,
    }

    impl Tree {
        fn count(&self) {
            *self.calls.lock().unwrap() += 1;
        }
    }

    impl Directory for Tree {
        async fn ensure_exists(&self, parent: &ParentId) -> Result<(), Error> {
            self.count();
            if self.children.contains_key(parent.as_str()) {
                Ok(())
            } else {
                Err(Error::invalid(format!("{parent} not found")))
            }
        }
        async fn child_ous(&self, parent: &str) -> Result<Vec<String>, Error> {
            self.count();
            Ok(self.children.get(parent).cloned().unwrap_or_default())
        }
        async fn accounts(&self, parent: &str) -> Result<Vec<Account>, Error> {
            self.count();
            Ok(self.accounts.get(parent).cloned().unwrap_or_default())
        }
    }

    fn acct(id: &str, active: bool) -> Account {
        Account {
            id: id.into(),
            active,
        }
    }

    fn tree() -> Tree {
        let mut t = Tree::default();
        t.children.insert("r-root".into(), vec!["ou-a".into()]);
        t.children.insert("ou-a".into(), vec!["ou-b".into()]);
        t.children.insert("ou-b".into(), vec![]);
        t.accounts
            .insert("r-root".into(), vec![acct("000000000009", true)]);
        t.accounts.insert(
            "ou-a".into(),
            vec![acct("000000000003", true), acct("000000000002", false)],
        );
        t.accounts.insert(
            "ou-b".into(),
            vec![acct("000000000001", true), acct("000000000003", true)],
        );
        t
    }

    #[tokio::test]
    async fn recursive_walk_keeps_active_sorted_unique() {
        let t = tree();
        let ids = resolve(&t, &[ParentId::Ou("ou-a".into())], true, &[])
            .await
            .unwrap();
        assert_eq!(ids, vec!["000000000001", "000000000003"]);
        let ids = resolve(&t, &[ParentId::Ou("ou-a".into())], false, &[])
            .await
            .unwrap();
        assert_eq!(ids, vec!["000000000003"]);
        let ids = resolve(
            &t,
            &[ParentId::Root("r-root".into())],
            true,
            &["000000000003".into()],
        )
        .await
        .unwrap();
        assert_eq!(ids, vec!["000000000001", "000000000009"]);
    }

    #[tokio::test]
    async fn overlapping_inputs_are_walked_once() {
        let t = tree();
        let parents = [ParentId::Ou("ou-b".into()), ParentId::Root("r-root".into())];
        resolve(&t, &parents, true, &[]).await.unwrap();
        // 2 existence checks + 3 parents × (accounts + children)
        assert_eq!(*t.calls.lock().unwrap(), 2 + 3 * 2);
    }

    #[tokio::test]
    async fn unknown_parent_fails_before_any_listing() {
        let t = tree();
        let err = resolve(&t, &[ParentId::Ou("ou-zz".into())], true, &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ou-zz"));
        assert_eq!(*t.calls.lock().unwrap(), 1);
    }
}
