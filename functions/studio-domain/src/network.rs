//! What SageMaker leaves behind when a domain is deleted with `HomeEfsFileSystem: Delete`: the NFS
//! security groups (they reference each other: rules are revoked first) and, should SageMaker not have
//! removed them, the home EFS file system and its mount targets. Only that domain's resources are
//! touched: the groups are found by the names SageMaker gives them, in the domain's VPC.

use aws_sdk_ec2::types::Filter;
use aws_sdk_efs::error::ProvideErrorMetadata;
use shared::Error;

/// Names SageMaker gives the domain's NFS security groups.
pub fn nfs_group_names(domain_id: &str) -> [String; 2] {
    [
        format!("security-group-for-inbound-nfs-{domain_id}"),
        format!("security-group-for-outbound-nfs-{domain_id}"),
    ]
}

/// Deletes the home file system's mount targets and the file system. Returns false while mount
/// targets are still being deleted (call again).
pub async fn delete_home_efs(
    efs: &aws_sdk_efs::Client,
    file_system_id: &str,
) -> Result<bool, Error> {
    let targets = match efs
        .describe_mount_targets()
        .file_system_id(file_system_id)
        .send()
        .await
    {
        Ok(out) => out.mount_targets().to_vec(),
        Err(e) if shared::error::not_found(e.code(), e.message().unwrap_or_default()) => {
            return Ok(true);
        }
        Err(e) => return Err(Error::aws("elasticfilesystem:DescribeMountTargets", e)),
    };
    if !targets.is_empty() {
        for mt in targets.iter().map(|t| t.mount_target_id()) {
            efs.delete_mount_target()
                .mount_target_id(mt)
                .send()
                .await
                .map_err(|e| Error::aws("elasticfilesystem:DeleteMountTarget", e))?;
        }
        return Ok(false);
    }
    match efs
        .delete_file_system()
        .file_system_id(file_system_id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if shared::error::not_found(e.code(), e.message().unwrap_or_default()) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_file_system_in_use()) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::aws("elasticfilesystem:DeleteFileSystem", e)),
    }
}

/// Revokes the rules of the domain's NFS security groups, then deletes them. Returns how many were
/// deleted.
pub async fn delete_nfs_groups(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    domain_id: &str,
) -> Result<usize, Error> {
    let out = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .set_values(Some(nfs_group_names(domain_id).to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::aws("ec2:DescribeSecurityGroups", e))?;
    let groups = out.security_groups();
    for g in groups {
        let Some(id) = g.group_id() else { continue };
        if !g.ip_permissions().is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(g.ip_permissions().to_vec()))
                .send()
                .await
                .map_err(|e| Error::aws("ec2:RevokeSecurityGroupIngress", e))?;
        }
        if !g.ip_permissions_egress().is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(g.ip_permissions_egress().to_vec()))
                .send()
                .await
                .map_err(|e| Error::aws("ec2:RevokeSecurityGroupEgress", e))?;
        }
    }
    for id in groups.iter().filter_map(|g| g.group_id()) {
        match ec2.delete_security_group().group_id(id).send().await {
            Ok(_) => {}
            Err(e) => {
                let err = Error::aws("ec2:DeleteSecurityGroup", e);
                if !err.is_not_found() {
                    return Err(err);
                }
            }
        }
    }
    Ok(groups.len())
}
