//! Facts about SageMaker ML instance types that decide whether a rule applies.
//!
//! **Local NVMe instance storage.** SageMaker's API reference (`ResourceConfig.VolumeKmsKeyId`,
//! `ProcessingClusterConfig.VolumeKmsKeyId`, `TransformResources.VolumeKmsKeyId`,
//! `CreateEndpointConfig.KmsKeyId`): "Certain Nitro-based instances include local storage … encrypted
//! using a hardware module on the instance. You can't request a VolumeKmsKeyId when using an instance
//! type with local storage" — for endpoint configs, if *any* production variant uses such an instance,
//! `CreateEndpointConfig` with a `KmsKeyId` fails. So on these instance types a missing volume key is
//! not a finding (`detective-control`), and the endpoint template must not set one
//! (`stackset-deploy`): it cannot be set, and the storage is encrypted anyway. The families are those AWS
//! lists with instance store volumes (SageMaker "Host instance storage volumes", EC2 instance types):
//! the `d` variants of general purpose / compute / memory families and the GPU/accelerator families
//! whose storage is NVMe only.

/// Instance families (`ml.<family>.<size>`) with local NVMe instance storage. One table: add new
/// families here.
pub const LOCAL_NVME_FAMILIES: &[&str] = &[
    // General purpose, compute and memory optimised with local NVMe SSDs (the `d` variants).
    "c5d", "m5d", "r5d", "c6gd", "m6gd", "r6gd", "c6id", "m6id", "r6id", "c7gd", "m7gd", "r7gd",
    // GPU instances with NVMe instance storage.
    "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en",
    // AWS Trainium.
    "trn1", "trn1n", "trn2",
];

/// True when `instance_type` (e.g. `ml.g5.2xlarge`) has local NVMe instance storage.
pub fn has_local_storage(instance_type: &str) -> bool {
    let mut parts = instance_type.trim().split('.');
    match (parts.next(), parts.next()) {
        (Some("ml"), Some(family)) => LOCAL_NVME_FAMILIES.contains(&family),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_and_d_families_have_local_storage_ebs_only_ones_do_not() {
        for t in [
            "ml.g5.2xlarge",
            "ml.g4dn.xlarge",
            "ml.p4d.24xlarge",
            "ml.p5.48xlarge",
            "ml.m5d.large",
            "ml.trn1.32xlarge",
        ] {
            assert!(has_local_storage(t), "{t}");
        }
        for t in [
            "ml.m5.xlarge",
            "ml.c5.2xlarge",
            "ml.p3.2xlarge",
            "ml.g5g.xlarge",
            "ml.inf2.xlarge",
            "g5.2xlarge",
            "",
        ] {
            assert!(!has_local_storage(t), "{t}");
        }
    }
}
