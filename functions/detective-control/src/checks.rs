//! The rules. Each check is one entry of [`RULES`]: its stable id (used in alerts, findings and the
//! `CHECKS` setting), what it requires, which resources it applies to, and the matching AWS Security Hub
//! control where one exists.

use crate::resource::{Kind, Observed};

/// One detective check.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, e.g. `vpc`.
    pub id: &'static str,
    /// What a compliant resource has, for humans.
    pub requires: &'static str,
    pub applies_to: &'static [Kind],
    pub severity: Severity,
    /// AWS Security Hub (AWS Foundational Security Best Practices) control for some kinds.
    pub security_hub: &'static [(Kind, &'static str)],
    /// Never a reason to stop or delete (availability, not security): alerted only.
    pub alert_only: bool,
    /// Runs only when `CHECKS` names it (`all` leaves it out): AWS's rule fits some organisations'
    /// policy, not every account's.
    pub opt_in: bool,
    pub passes: fn(&Observed) -> bool,
}

/// The notebook instance platforms SageMaker still supports (`PlatformIdentifier`), as of 2026-11:
/// `notebook-al1-v1`, `notebook-al2-v1` and `notebook-al2-v2` are deprecated (no longer patched, cannot
/// be chosen for new instances). Update this table when AWS ends support for another platform; SageMaker
/// applies its own default when a request names none, which is supported.
pub const SUPPORTED_NOTEBOOK_PLATFORMS: [&str; 2] = ["notebook-al2-v3", "notebook-al2023-v1"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Medium,
    High,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
        }
    }
}

use Kind::*;

pub const RULES: [Rule; 12] = [
    Rule {
        id: "vpc",
        requires: "runs in a VPC (VpcConfig with subnets; SubnetId for notebooks)",
        applies_to: &[
            TrainingJob,
            ProcessingJob,
            TuningJob,
            Model,
            NotebookInstance,
            DataQualityJobDefinition,
            ModelQualityJobDefinition,
            ModelBiasJobDefinition,
            ModelExplainabilityJobDefinition,
            MonitoringSchedule,
        ],
        severity: Severity::High,
        security_hub: &[(NotebookInstance, "SageMaker.2")],
        alert_only: false,
        opt_in: false,
        passes: |o| !o.subnets.is_empty(),
    },
    Rule {
        id: "network-isolation",
        requires: "EnableNetworkIsolation is true",
        applies_to: &[
            TrainingJob,
            Model,
            DataQualityJobDefinition,
            ModelQualityJobDefinition,
            ModelBiasJobDefinition,
            ModelExplainabilityJobDefinition,
            MonitoringSchedule,
        ],
        severity: Severity::High,
        security_hub: &[
            (Model, "SageMaker.5"),
            (DataQualityJobDefinition, "SageMaker.11"),
            (ModelBiasJobDefinition, "SageMaker.12"),
            (ModelExplainabilityJobDefinition, "SageMaker.20"),
            (ModelQualityJobDefinition, "SageMaker.25"),
            (MonitoringSchedule, "SageMaker.14"),
        ],
        alert_only: false,
        opt_in: false,
        passes: |o| o.network_isolation == Some(true),
    },
    Rule {
        id: "inter-container-encryption",
        requires: "EnableInterContainerTrafficEncryption is true when two or more instances run \
                   together (a single instance has no traffic between containers)",
        applies_to: &[
            TrainingJob,
            ProcessingJob,
            TuningJob,
            DataQualityJobDefinition,
            ModelQualityJobDefinition,
            ModelBiasJobDefinition,
            ModelExplainabilityJobDefinition,
            MonitoringSchedule,
        ],
        severity: Severity::Medium,
        security_hub: &[
            (DataQualityJobDefinition, "SageMaker.9"),
            (ModelExplainabilityJobDefinition, "SageMaker.10"),
            (ModelQualityJobDefinition, "SageMaker.13"),
            (ModelBiasJobDefinition, "SageMaker.15"),
            (MonitoringSchedule, "SageMaker.22"),
        ],
        alert_only: false,
        opt_in: false,
        passes: |o| o.inter_container_traffic_protected(),
    },
    Rule {
        id: "volume-kms",
        requires: "storage volumes are encrypted with a KMS key of yours (VolumeKmsKeyId / KmsKeyId); \
                   instance types with local NVMe storage cannot take one and are encrypted by hardware",
        applies_to: &[
            TrainingJob,
            ProcessingJob,
            TransformJob,
            TuningJob,
            NotebookInstance,
            EndpointConfig,
            Endpoint,
            DataQualityJobDefinition,
            ModelQualityJobDefinition,
            ModelBiasJobDefinition,
            ModelExplainabilityJobDefinition,
            MonitoringSchedule,
            InferenceExperiment,
        ],
        severity: Severity::Medium,
        security_hub: &[
            (NotebookInstance, "SageMaker.21"),
            (InferenceExperiment, "SageMaker.23"),
        ],
        alert_only: false,
        opt_in: false,
        passes: |o| o.volume_encrypted(),
    },
    Rule {
        id: "output-kms",
        requires: "output in S3 is encrypted with a KMS key of yours (KmsKeyId of the output)",
        applies_to: &[
            TrainingJob,
            ProcessingJob,
            TransformJob,
            DataQualityJobDefinition,
            ModelQualityJobDefinition,
            ModelBiasJobDefinition,
            ModelExplainabilityJobDefinition,
            MonitoringSchedule,
        ],
        severity: Severity::Medium,
        security_hub: &[],
        alert_only: false,
        opt_in: false,
        passes: |o| o.output_kms_key.is_some(),
    },
    Rule {
        id: "notebook-direct-internet",
        requires: "DirectInternetAccess is Disabled (SageMaker's default is Enabled)",
        applies_to: &[NotebookInstance],
        severity: Severity::High,
        security_hub: &[(NotebookInstance, "SageMaker.1")],
        alert_only: false,
        opt_in: false,
        passes: |o| o.direct_internet_access.as_deref() == Some("Disabled"),
    },
    Rule {
        id: "notebook-root-access",
        requires: "RootAccess is Disabled (SageMaker's default is Enabled)",
        applies_to: &[NotebookInstance],
        severity: Severity::High,
        security_hub: &[(NotebookInstance, "SageMaker.3")],
        alert_only: false,
        opt_in: false,
        passes: |o| o.root_access.as_deref() == Some("Disabled"),
    },
    Rule {
        id: "domain-vpc-only",
        requires: "AppNetworkAccessType is VpcOnly (SageMaker's default is PublicInternetOnly)",
        applies_to: &[Domain],
        severity: Severity::High,
        security_hub: &[],
        alert_only: false,
        opt_in: false,
        passes: |o| o.app_network_access_type.as_deref() == Some("VpcOnly"),
    },
    Rule {
        id: "endpoint-instance-count",
        requires: "every instance-based production variant of a production endpoint starts with two \
                   instances or more (SageMaker then spreads them over Availability Zones); an \
                   endpoint or config is production when a hyphen-separated part of its name is \
                   `prod` or `production`",
        applies_to: &[EndpointConfig, Endpoint],
        severity: Severity::Medium,
        security_hub: &[(EndpointConfig, "SageMaker.4")],
        alert_only: true,
        opt_in: false,
        passes: |o| !o.production || o.variant_instance_counts.iter().all(|n| *n > 1),
    },
    Rule {
        id: "data-store-kms",
        requires: "every store of data at rest has a KMS key of yours: a feature group's offline store \
                   (S3) and its online store with standard storage (in-memory storage takes none), an \
                   inference experiment's captured data",
        applies_to: &[FeatureGroup, InferenceExperiment],
        severity: Severity::Medium,
        security_hub: &[
            (FeatureGroup, "SageMaker.17 / SageMaker.18"),
            (InferenceExperiment, "SageMaker.24"),
        ],
        alert_only: false,
        opt_in: false,
        passes: |o| o.data_stores.iter().all(|(_, encrypted)| *encrypted),
    },
    Rule {
        id: "notebook-platform",
        requires: "the notebook instance runs on a platform SageMaker still supports \
                   (PlatformIdentifier in SUPPORTED_NOTEBOOK_PLATFORMS; none given: SageMaker's default)",
        applies_to: &[NotebookInstance],
        severity: Severity::Medium,
        security_hub: &[(NotebookInstance, "SageMaker.8")],
        // An old platform is a patching matter: stopping the notebook would not fix it.
        alert_only: true,
        opt_in: false,
        passes: |o| {
            o.platform
                .as_deref()
                .is_none_or(|p| SUPPORTED_NOTEBOOK_PLATFORMS.contains(&p))
        },
    },
    Rule {
        id: "model-private-registry",
        requires: "every container of the model pulls its image from a private Docker registry in \
                   the VPC (ImageConfig.RepositoryAccessMode is Vpc; Platform means Amazon ECR)",
        applies_to: &[Model],
        severity: Severity::Medium,
        security_hub: &[(Model, "SageMaker.16 / SageMaker.19")],
        // AWS's rule fails every model whose image is in Amazon ECR: only for organisations that host
        // their images in a registry of their own VPC.
        alert_only: true,
        opt_in: true,
        passes: |o| {
            o.image_access_modes
                .iter()
                .all(|m| m.as_deref() == Some("Vpc"))
        },
    },
];

impl Rule {
    pub fn by_id(id: &str) -> Option<&'static Rule> {
        RULES.iter().find(|r| r.id == id)
    }

    pub fn control_for(&self, kind: Kind) -> Option<&'static str> {
        self.security_hub
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, c)| *c)
    }
}

/// The enabled rules that apply to `kind` and fail for `observed`, in [`RULES`] order.
pub fn failed(kind: Kind, observed: &Observed, enabled: &[&'static Rule]) -> Vec<&'static Rule> {
    if observed.judged_elsewhere {
        return Vec::new();
    }
    enabled
        .iter()
        .copied()
        .filter(|r| r.applies_to.contains(&kind) && !(r.passes)(observed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static Rule> {
        RULES.iter().collect()
    }

    fn ids(rules: Vec<&Rule>) -> Vec<&str> {
        rules.iter().map(|r| r.id).collect()
    }

    #[test]
    fn ids_are_unique_and_every_kind_is_covered() {
        let mut seen: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), RULES.len());
        for kind in Kind::all() {
            assert!(
                RULES.iter().any(|r| r.applies_to.contains(&kind)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn nothing_configured_fails_every_applicable_rule() {
        let o = Observed::default();
        assert_eq!(
            ids(failed(TrainingJob, &o, &all())),
            [
                "vpc",
                "network-isolation",
                "inter-container-encryption",
                "volume-kms",
                "output-kms"
            ]
        );
        assert_eq!(
            ids(failed(TransformJob, &o, &all())),
            ["volume-kms", "output-kms"]
        );
        assert_eq!(ids(failed(Model, &o, &all())), ["vpc", "network-isolation"]);
        assert_eq!(
            ids(failed(NotebookInstance, &o, &all())),
            [
                "vpc",
                "volume-kms",
                "notebook-direct-internet",
                "notebook-root-access"
            ]
        );
        assert_eq!(ids(failed(EndpointConfig, &o, &all())), ["volume-kms"]);
        assert_eq!(ids(failed(Domain, &o, &all())), ["domain-vpc-only"]);
    }

    /// SageMaker.4: production endpoints' instance-based variants start with two instances or more;
    /// a non-production endpoint on one instance is legitimate (staging), and a serverless variant has
    /// no instance count at all.
    #[test]
    fn production_endpoints_need_two_instances() {
        let count = [Rule::by_id("endpoint-instance-count").unwrap()];
        let o = |production, counts: &[i64]| Observed {
            production,
            variant_instance_counts: counts.to_vec(),
            ..Observed::default()
        };
        assert_eq!(
            ids(failed(EndpointConfig, &o(true, &[1, 2]), &count)),
            ["endpoint-instance-count"]
        );
        assert!(failed(EndpointConfig, &o(true, &[2, 3]), &count).is_empty());
        assert!(failed(Endpoint, &o(false, &[1]), &count).is_empty());
        assert!(failed(EndpointConfig, &o(true, &[]), &count).is_empty());
        assert!(count[0].alert_only);
        assert!(crate::resource::is_production("secure-mlops-churn-prod"));
        assert!(crate::resource::is_production("Production_ep"));
        assert!(!crate::resource::is_production("products-ep"));
    }

    #[test]
    fn a_compliant_resource_passes_and_disabled_rules_do_not_run() {
        let o = Observed {
            subnets: vec!["subnet-1".into()],
            network_isolation: Some(true),
            inter_container_encryption: Some(true),
            volume_kms_key: Some("k".into()),
            output_kms_key: Some("k".into()),
            direct_internet_access: Some("Disabled".into()),
            root_access: Some("Disabled".into()),
            app_network_access_type: Some("VpcOnly".into()),
            instance_types: vec!["ml.m5.xlarge".into()],
            instance_count: Some(4),
            variant_instance_counts: vec![2],
            production: true,
            judged_elsewhere: false,
            data_stores: vec![("offline store", true)],
            platform: Some("notebook-al2023-v1".into()),
            image_access_modes: vec![Some("Vpc".into())],
        };
        for kind in Kind::all() {
            assert!(failed(kind, &o, &all()).is_empty(), "{kind:?}");
        }
        let only_vpc = vec![Rule::by_id("vpc").unwrap()];
        assert_eq!(
            ids(failed(TrainingJob, &Observed::default(), &only_vpc)),
            ["vpc"]
        );
    }

    /// SageMaker refuses a volume key on instances with local NVMe storage, and a single instance has
    /// no traffic between containers: neither is a finding (no false positive).
    #[test]
    fn nvme_instances_and_single_instances_are_not_findings() {
        let gpu = Observed {
            instance_types: vec!["ml.g5.2xlarge".into()],
            instance_count: Some(1),
            ..Observed::default()
        };
        let failed_ids = ids(failed(TrainingJob, &gpu, &all()));
        assert!(!failed_ids.contains(&"volume-kms"), "{failed_ids:?}");
        assert!(
            !failed_ids.contains(&"inter-container-encryption"),
            "{failed_ids:?}"
        );
        let cluster = Observed {
            instance_types: vec!["ml.m5.xlarge".into()],
            instance_count: Some(2),
            ..Observed::default()
        };
        let failed_ids = ids(failed(TrainingJob, &cluster, &all()));
        assert!(
            failed_ids.contains(&"volume-kms")
                && failed_ids.contains(&"inter-container-encryption")
        );
        // Endpoint configs: one NVMe variant is enough for SageMaker to refuse a KmsKeyId.
        let mixed = Observed {
            instance_types: vec!["ml.m5.xlarge".into(), "ml.g5.xlarge".into()],
            ..Observed::default()
        };
        assert!(failed(EndpointConfig, &mixed, &all()).is_empty());
        // An unknown instance count is judged as several.
        let unknown = Observed {
            instance_count: None,
            ..Observed::default()
        };
        assert!(
            ids(failed(ProcessingJob, &unknown, &all())).contains(&"inter-container-encryption")
        );
    }

    /// SageMaker.8: a deprecated platform is alerted (never a stop); none given is SageMaker's default.
    #[test]
    fn notebooks_on_deprecated_platforms() {
        let rule = [Rule::by_id("notebook-platform").unwrap()];
        let on = |p: Option<&str>| Observed {
            platform: p.map(str::to_owned),
            ..Observed::default()
        };
        for old in ["notebook-al1-v1", "notebook-al2-v1", "notebook-al2-v2"] {
            assert_eq!(
                ids(failed(NotebookInstance, &on(Some(old)), &rule)),
                ["notebook-platform"]
            );
        }
        for ok in [None, Some("notebook-al2-v3"), Some("notebook-al2023-v1")] {
            assert!(
                failed(NotebookInstance, &on(ok), &rule).is_empty(),
                "{ok:?}"
            );
        }
        assert!(rule[0].alert_only && !rule[0].opt_in);
    }

    /// SageMaker.16 (primary container) and .19 (each container of a pipeline): a missing ImageConfig
    /// or `Platform` (Amazon ECR) fails, as AWS Config's rules evaluate it. Opt-in, alert-only.
    #[test]
    fn private_registry_models_are_opt_in() {
        let rule = [Rule::by_id("model-private-registry").unwrap()];
        let modes = |m: &[Option<&str>]| Observed {
            image_access_modes: m.iter().map(|x| x.map(str::to_owned)).collect(),
            ..Observed::default()
        };
        assert!(failed(Model, &modes(&[Some("Vpc")]), &rule).is_empty());
        assert!(failed(Model, &modes(&[Some("Vpc"), Some("Vpc")]), &rule).is_empty());
        for bad in [&[None][..], &[Some("Platform")], &[Some("Vpc"), None]] {
            assert_eq!(
                ids(failed(Model, &modes(bad), &rule)),
                ["model-private-registry"]
            );
        }
        assert!(rule[0].opt_in && rule[0].alert_only);
    }

    #[test]
    fn security_hub_controls_where_aws_has_one() {
        let vpc = Rule::by_id("vpc").unwrap();
        assert_eq!(vpc.control_for(NotebookInstance), Some("SageMaker.2"));
        assert_eq!(vpc.control_for(TrainingJob), None);
    }
}
