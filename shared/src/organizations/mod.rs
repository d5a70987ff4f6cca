//! AWS Organizations lookups shared by `org-accounts` and `stackset-deploy` (feature `organizations`):
//! OU or root ids → the sorted, unique ids of their ACTIVE accounts.

pub mod client;
pub mod directory;

pub use client::Organizations;
pub use directory::{Account, Directory, resolve};
