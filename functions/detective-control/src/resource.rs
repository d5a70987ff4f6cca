//! What the control looks at: the kinds of SageMaker resources, and the facts about one resource that the
//! checks need ([`Observed`]), read from a CloudTrail `requestParameters` object (camelCase member names;
//! any field may be missing or `null`, which means "not configured").

use serde_json::Value;

use crate::respond::Action;

/// The SageMaker resources the control watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    TrainingJob,
    ProcessingJob,
    TransformJob,
    TuningJob,
    Model,
    NotebookInstance,
    EndpointConfig,
    /// Judged by its endpoint config; alerted on, never deleted (it serves traffic).
    Endpoint,
    Domain,
    /// Model Monitor job definitions: alerted on, never deleted (schedules may use them).
    DataQualityJobDefinition,
    ModelQualityJobDefinition,
    ModelBiasJobDefinition,
    ModelExplainabilityJobDefinition,
    /// Judged by its inline job definition (one it names is judged on its own); alerted on, never
    /// stopped (that would stop the monitoring).
    MonitoringSchedule,
    /// Feature Store: alerted on, never deleted (it holds data).
    FeatureGroup,
    /// Shadow tests: alerted on, never stopped.
    InferenceExperiment,
}

/// One row per watched kind: everything about it that is not a judgement (the rules, `checks.rs`) or
/// an SDK call (`sagemaker.rs`). A new kind is one row here, its request facts in
/// [`Observed::from_request`], and its describe/act calls.
pub struct Spec {
    pub kind: Kind,
    /// Words for humans (alert subjects).
    pub label: &'static str,
    /// The CloudTrail event names, each with whether the resource is judged as described (an update,
    /// or a call whose parameters do not hold the facts) rather than from the request.
    pub events: &'static [(&'static str, bool)],
    /// The request member that names the resource, as CloudTrail spells it.
    pub name_member: &'static str,
    /// The response member with the resource's ARN.
    pub arn_member: &'static str,
    /// The resource type in its ARN (`arn:…:sagemaker:region:account:<type>/<name>`).
    pub arn_type: &'static str,
    /// The AWS Security Finding Format resource type.
    pub asff_type: &'static str,
    /// What `enforce` mode does about a non-compliant one.
    pub action: Action,
    /// Why nothing is done about it, when `action` is `None`.
    pub never: Option<&'static str>,
    /// The statuses in which a stop applies (empty: the kind has no such status).
    pub running: &'static [&'static str],
    /// Its findings are archived once the action is done (a stopped notebook can start again: no).
    pub resolved_by_action: bool,
}

const JOB_RUNNING: &[&str] = &["InProgress"];

pub const KINDS: [Spec; 16] = [
    Spec {
        kind: Kind::TrainingJob,
        label: "training job",
        events: &[("CreateTrainingJob", false)],
        name_member: "trainingJobName",
        arn_member: "trainingJobArn",
        arn_type: "training-job",
        asff_type: "Other",
        action: Action::Stop,
        never: None,
        running: JOB_RUNNING,
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::ProcessingJob,
        label: "processing job",
        events: &[("CreateProcessingJob", false)],
        name_member: "processingJobName",
        arn_member: "processingJobArn",
        arn_type: "processing-job",
        asff_type: "Other",
        action: Action::Stop,
        never: None,
        running: JOB_RUNNING,
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::TransformJob,
        label: "transform job",
        events: &[("CreateTransformJob", false)],
        name_member: "transformJobName",
        arn_member: "transformJobArn",
        arn_type: "transform-job",
        asff_type: "Other",
        action: Action::Stop,
        never: None,
        running: JOB_RUNNING,
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::TuningJob,
        label: "hyperparameter tuning job",
        events: &[("CreateHyperParameterTuningJob", false)],
        name_member: "hyperParameterTuningJobName",
        arn_member: "hyperParameterTuningJobArn",
        arn_type: "hyper-parameter-tuning-job",
        asff_type: "Other",
        action: Action::Stop,
        never: None,
        running: JOB_RUNNING,
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::Model,
        label: "model",
        events: &[("CreateModel", false)],
        name_member: "modelName",
        arn_member: "modelArn",
        arn_type: "model",
        asff_type: "Other",
        action: Action::Delete,
        never: None,
        running: &[],
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::NotebookInstance,
        label: "notebook instance",
        events: &[
            ("CreateNotebookInstance", false),
            ("UpdateNotebookInstance", true),
        ],
        name_member: "notebookInstanceName",
        arn_member: "notebookInstanceArn",
        arn_type: "notebook-instance",
        asff_type: "AwsSageMakerNotebookInstance",
        action: Action::Stop,
        never: None,
        running: &["InService", "Pending"],
        resolved_by_action: false,
    },
    Spec {
        kind: Kind::EndpointConfig,
        label: "endpoint config",
        events: &[("CreateEndpointConfig", false)],
        name_member: "endpointConfigName",
        arn_member: "endpointConfigArn",
        arn_type: "endpoint-config",
        asff_type: "Other",
        action: Action::Delete,
        never: None,
        running: &[],
        resolved_by_action: true,
    },
    Spec {
        kind: Kind::Endpoint,
        label: "endpoint",
        // The request names only the endpoint config: judged as described.
        events: &[("CreateEndpoint", true), ("UpdateEndpoint", true)],
        name_member: "endpointName",
        arn_member: "endpointArn",
        arn_type: "endpoint",
        asff_type: "Other",
        action: Action::None,
        never: Some(
            "an endpoint is never deleted by this control: it serves traffic; update it to a compliant endpoint config",
        ),
        running: &[],
        resolved_by_action: false,
    },
    Spec {
        kind: Kind::Domain,
        label: "Studio domain",
        events: &[("CreateDomain", false), ("UpdateDomain", true)],
        name_member: "domainName",
        arn_member: "domainArn",
        arn_type: "domain",
        asff_type: "Other",
        action: Action::None,
        never: Some("a Studio domain is never deleted by this control: it holds user data"),
        running: &[],
        resolved_by_action: false,
    },
    monitoring_definition(
        Kind::DataQualityJobDefinition,
        "data quality job definition",
        &[("CreateDataQualityJobDefinition", false)],
        "data-quality-job-definition",
    ),
    monitoring_definition(
        Kind::ModelQualityJobDefinition,
        "model quality job definition",
        &[("CreateModelQualityJobDefinition", false)],
        "model-quality-job-definition",
    ),
    monitoring_definition(
        Kind::ModelBiasJobDefinition,
        "model bias job definition",
        &[("CreateModelBiasJobDefinition", false)],
        "model-bias-job-definition",
    ),
    monitoring_definition(
        Kind::ModelExplainabilityJobDefinition,
        "model explainability job definition",
        &[("CreateModelExplainabilityJobDefinition", false)],
        "model-explainability-job-definition",
    ),
    Spec {
        kind: Kind::MonitoringSchedule,
        label: "monitoring schedule",
        // An update carries the whole schedule configuration: judged from the request too.
        events: &[
            ("CreateMonitoringSchedule", false),
            ("UpdateMonitoringSchedule", false),
        ],
        name_member: "monitoringScheduleName",
        arn_member: "monitoringScheduleArn",
        arn_type: "monitoring-schedule",
        asff_type: "Other",
        action: Action::None,
        never: Some(
            "a monitoring schedule is alerted on, not stopped: stopping it would stop the monitoring; update it with a compliant job definition",
        ),
        running: &[],
        resolved_by_action: false,
    },
    Spec {
        kind: Kind::FeatureGroup,
        label: "feature group",
        events: &[("CreateFeatureGroup", false)],
        name_member: "featureGroupName",
        arn_member: "featureGroupArn",
        arn_type: "feature-group",
        asff_type: "Other",
        action: Action::None,
        never: Some(
            "a feature group is alerted on, never deleted: it holds data; create an encrypted one and move the features",
        ),
        running: &[],
        resolved_by_action: false,
    },
    Spec {
        kind: Kind::InferenceExperiment,
        label: "inference experiment",
        events: &[("CreateInferenceExperiment", false)],
        name_member: "name",
        arn_member: "inferenceExperimentArn",
        arn_type: "inference-experiment",
        asff_type: "Other",
        action: Action::None,
        never: Some(
            "an inference experiment is alerted on, not stopped: it shadows a production endpoint; stop it yourself and create an encrypted one",
        ),
        running: &[],
        resolved_by_action: false,
    },
];

/// The four Model Monitor job definitions differ only in names: one row each, built alike.
const fn monitoring_definition(
    kind: Kind,
    label: &'static str,
    events: &'static [(&'static str, bool)],
    arn_type: &'static str,
) -> Spec {
    Spec {
        kind,
        label,
        events,
        name_member: "jobDefinitionName",
        arn_member: "jobDefinitionArn",
        arn_type,
        asff_type: "Other",
        action: Action::None,
        never: Some(
            "a monitoring job definition is alerted on, not deleted: monitoring schedules may use it; create a compliant one and point the schedules at it",
        ),
        running: &[],
        resolved_by_action: false,
    }
}

impl Kind {
    #[cfg(test)]
    pub fn all() -> impl Iterator<Item = Kind> {
        KINDS.iter().map(|s| s.kind)
    }

    /// The kind's row of [`KINDS`].
    pub fn spec(self) -> &'static Spec {
        KINDS
            .iter()
            .find(|s| s.kind == self)
            .expect("every kind has a row in KINDS")
    }

    /// The kind a watched CloudTrail event name is about, and whether it is judged as described.
    pub fn from_event_name(name: &str) -> Option<(Kind, bool)> {
        KINDS.iter().find_map(|s| {
            s.events
                .iter()
                .find(|(event, _)| *event == name)
                .map(|(_, described)| (s.kind, *described))
        })
    }

    pub fn label(self) -> &'static str {
        self.spec().label
    }

    fn name_member(self) -> &'static str {
        self.spec().name_member
    }

    fn arn_member(self) -> &'static str {
        self.spec().arn_member
    }

    pub fn arn_type(self) -> &'static str {
        self.spec().arn_type
    }

    pub fn asff_type(self) -> &'static str {
        self.spec().asff_type
    }
}

/// One resource, by name and ARN.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    pub arn: String,
}

/// Where a resource lives, for ARNs the event did not carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Place {
    /// SageMaker ARNs carry the resource name in lower case.
    pub fn arn(&self, kind: Kind, name: &str) -> String {
        format!(
            "arn:{}:sagemaker:{}:{}:{}/{}",
            self.partition,
            self.region,
            self.account,
            kind.arn_type(),
            name.to_lowercase()
        )
    }
}

impl Resource {
    /// The resource a CloudTrail call created or changed. `None` when the parameters do not name it.
    pub fn from_call(kind: Kind, request: &Value, response: &Value, place: &Place) -> Option<Self> {
        let id_member = if kind == Kind::Domain && request.get("domainId").is_some() {
            "domainId" // UpdateDomain names the domain by id
        } else {
            kind.name_member()
        };
        let name = text(request, &[id_member])?;
        let arn = text(response, &[kind.arn_member()]).unwrap_or_else(|| place.arn(kind, &name));
        Some(Resource { kind, name, arn })
    }
}

/// The facts the checks look at. Missing means "not configured" (SageMaker then applies its default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// VPC subnets the resource runs in (a notebook's `SubnetId` counts as one).
    pub subnets: Vec<String>,
    pub network_isolation: Option<bool>,
    pub inter_container_encryption: Option<bool>,
    pub volume_kms_key: Option<String>,
    pub output_kms_key: Option<String>,
    pub direct_internet_access: Option<String>,
    pub root_access: Option<String>,
    pub app_network_access_type: Option<String>,
    /// The ML instance types the resource runs on (every group / production variant).
    pub instance_types: Vec<String>,
    /// How many instances run together (the sum over a training job's instance groups).
    pub instance_count: Option<i64>,
    /// The initial instance count of each instance-based production variant (serverless ones have none).
    pub variant_instance_counts: Vec<i64>,
    /// Named as production (see [`is_production`]).
    pub production: bool,
    /// Judged elsewhere: a monitoring schedule that names its job definition (checked on its own
    /// event) instead of holding one.
    pub judged_elsewhere: bool,
    /// Stores of data at rest and whether each has a KMS key of yours: a feature group's offline
    /// store (S3), its online store with standard storage (in-memory storage takes no key), an
    /// inference experiment's captured data. Absent stores are not listed.
    pub data_stores: Vec<(&'static str, bool)>,
    /// A notebook instance's platform (`PlatformIdentifier`; none: SageMaker's default).
    pub platform: Option<String>,
    /// How each container of a model reaches its image (`ImageConfig.RepositoryAccessMode`: `Vpc` or
    /// `Platform`; `None` when the container has no `ImageConfig`).
    pub image_access_modes: Vec<Option<String>>,
}

/// A resource is production when a hyphen-separated part of its name is `prod` or `production`
/// (`churn-prod`, `prod-churn-ep`; the deployment pipeline names its endpoints `<project>-<group>-prod`).
pub fn is_production(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(['-', '_'])
        .any(|part| part == "prod" || part == "production")
}

impl Observed {
    /// A volume key cannot be set on instances with local NVMe storage (see [`shared::instances`]):
    /// their storage is encrypted by the instance.
    pub fn volume_encrypted(&self) -> bool {
        self.volume_kms_key.is_some()
            || self
                .instance_types
                .iter()
                .any(|t| shared::instances::has_local_storage(t))
    }

    /// Traffic between containers exists only with two instances or more; unknown counts as more.
    pub fn inter_container_traffic_protected(&self) -> bool {
        self.inter_container_encryption == Some(true) || self.instance_count.is_some_and(|n| n <= 1)
    }

    /// The facts of a `Create…` call's parameters (CloudTrail camelCase).
    pub fn from_request(kind: Kind, p: &Value) -> Observed {
        match kind {
            Kind::TrainingJob => {
                // One instance type, or a heterogeneous cluster of instance groups.
                let groups = at(p, &["resourceConfig", "instanceGroups"])
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut instance_types: Vec<String> = text(p, &["resourceConfig", "instanceType"])
                    .into_iter()
                    .collect();
                instance_types.extend(groups.iter().filter_map(|g| text(g, &["instanceType"])));
                let instance_count =
                    number(p, &["resourceConfig", "instanceCount"]).or_else(|| {
                        (!groups.is_empty()).then(|| {
                            groups
                                .iter()
                                .filter_map(|g| number(g, &["instanceCount"]))
                                .sum()
                        })
                    });
                Observed {
                    subnets: list(p, &["vpcConfig", "subnets"]),
                    network_isolation: flag(p, &["enableNetworkIsolation"]),
                    inter_container_encryption: flag(p, &["enableInterContainerTrafficEncryption"]),
                    volume_kms_key: text(p, &["resourceConfig", "volumeKmsKeyId"]),
                    output_kms_key: text(p, &["outputDataConfig", "kmsKeyId"]),
                    instance_types,
                    instance_count,
                    ..Observed::default()
                }
            }
            Kind::ProcessingJob => Observed {
                subnets: list(p, &["networkConfig", "vpcConfig", "subnets"]),
                network_isolation: flag(p, &["networkConfig", "enableNetworkIsolation"]),
                inter_container_encryption: flag(
                    p,
                    &["networkConfig", "enableInterContainerTrafficEncryption"],
                ),
                volume_kms_key: text(
                    p,
                    &["processingResources", "clusterConfig", "volumeKmsKeyId"],
                ),
                output_kms_key: text(p, &["processingOutputConfig", "kmsKeyId"]),
                instance_types: text(p, &["processingResources", "clusterConfig", "instanceType"])
                    .into_iter()
                    .collect(),
                instance_count: number(
                    p,
                    &["processingResources", "clusterConfig", "instanceCount"],
                ),
                ..Observed::default()
            },
            Kind::TransformJob => Observed {
                volume_kms_key: text(p, &["transformResources", "volumeKmsKeyId"]),
                output_kms_key: text(p, &["transformOutput", "kmsKeyId"]),
                instance_types: text(p, &["transformResources", "instanceType"])
                    .into_iter()
                    .collect(),
                instance_count: number(p, &["transformResources", "instanceCount"]),
                ..Observed::default()
            },
            Kind::TuningJob => {
                // One definition, or several (`trainingJobDefinitions`): the weakest one counts.
                let mut definitions: Vec<&Value> = p
                    .get("trainingJobDefinitions")
                    .and_then(Value::as_array)
                    .map(|d| d.iter().collect())
                    .unwrap_or_default();
                if let Some(d) = p.get("trainingJobDefinition").filter(|d| !d.is_null()) {
                    definitions.push(d);
                }
                definitions
                    .into_iter()
                    .map(|d| Observed::from_request(Kind::TrainingJob, d))
                    .reduce(Observed::weakest)
                    .unwrap_or_default()
            }
            Kind::Model => Observed {
                subnets: list(p, &["vpcConfig", "subnets"]),
                network_isolation: flag(p, &["enableNetworkIsolation"]),
                image_access_modes: p
                    .get("primaryContainer")
                    .filter(|c| c.is_object())
                    .into_iter()
                    .chain(
                        at(p, &["containers"])
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten(),
                    )
                    .map(|c| text(c, &["imageConfig", "repositoryAccessMode"]))
                    .collect(),
                ..Observed::default()
            },
            Kind::NotebookInstance => Observed {
                subnets: text(p, &["subnetId"]).into_iter().collect(),
                volume_kms_key: text(p, &["kmsKeyId"]),
                direct_internet_access: text(p, &["directInternetAccess"]),
                root_access: text(p, &["rootAccess"]),
                platform: text(p, &["platformIdentifier"]),
                instance_types: text(p, &["instanceType"]).into_iter().collect(),
                ..Observed::default()
            },
            Kind::EndpointConfig => Observed {
                volume_kms_key: text(p, &["kmsKeyId"]),
                variant_instance_counts: at(p, &["productionVariants"])
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .filter(|pv| at(pv, &["serverlessConfig"]).is_none_or(Value::is_null))
                            .map(|pv| number(pv, &["initialInstanceCount"]).unwrap_or(1))
                            .collect()
                    })
                    .unwrap_or_default(),
                production: text(p, &["endpointConfigName"]).is_some_and(|n| is_production(&n)),
                instance_types: at(p, &["productionVariants"])
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .filter_map(|pv| text(pv, &["instanceType"]))
                            .collect()
                    })
                    .unwrap_or_default(),
                ..Observed::default()
            },
            // Judged from its endpoint config, as described.
            Kind::Endpoint => Observed::default(),
            Kind::FeatureGroup => {
                let mut data_stores = Vec::new();
                if at(p, &["offlineStoreConfig"]).is_some_and(|v| !v.is_null()) {
                    data_stores.push((
                        "offline store",
                        text(p, &["offlineStoreConfig", "s3StorageConfig", "kmsKeyId"]).is_some(),
                    ));
                }
                let online = flag(p, &["onlineStoreConfig", "enableOnlineStore"]) == Some(true);
                let in_memory =
                    text(p, &["onlineStoreConfig", "storageType"]).as_deref() == Some("InMemory");
                if online && !in_memory {
                    data_stores.push((
                        "online store",
                        text(p, &["onlineStoreConfig", "securityConfig", "kmsKeyId"]).is_some(),
                    ));
                }
                Observed {
                    data_stores,
                    ..Observed::default()
                }
            }
            Kind::InferenceExperiment => {
                let mut data_stores = Vec::new();
                if at(p, &["dataStorageConfig"]).is_some_and(|v| !v.is_null()) {
                    data_stores.push((
                        "captured data",
                        text(p, &["dataStorageConfig", "kmsKey"]).is_some(),
                    ));
                }
                Observed {
                    volume_kms_key: text(p, &["kmsKey"]),
                    data_stores,
                    ..Observed::default()
                }
            }
            Kind::MonitoringSchedule => {
                match at(p, &["monitoringScheduleConfig", "monitoringJobDefinition"])
                    .filter(|d| !d.is_null())
                {
                    Some(d) => Observed {
                        subnets: list(d, &["networkConfig", "vpcConfig", "subnets"]),
                        network_isolation: flag(d, &["networkConfig", "enableNetworkIsolation"]),
                        inter_container_encryption: flag(
                            d,
                            &["networkConfig", "enableInterContainerTrafficEncryption"],
                        ),
                        volume_kms_key: text(
                            d,
                            &["monitoringResources", "clusterConfig", "volumeKmsKeyId"],
                        ),
                        output_kms_key: text(d, &["monitoringOutputConfig", "kmsKeyId"]),
                        instance_types: text(
                            d,
                            &["monitoringResources", "clusterConfig", "instanceType"],
                        )
                        .into_iter()
                        .collect(),
                        instance_count: number(
                            d,
                            &["monitoringResources", "clusterConfig", "instanceCount"],
                        ),
                        ..Observed::default()
                    },
                    None => Observed {
                        judged_elsewhere: true,
                        ..Observed::default()
                    },
                }
            }
            Kind::DataQualityJobDefinition
            | Kind::ModelQualityJobDefinition
            | Kind::ModelBiasJobDefinition
            | Kind::ModelExplainabilityJobDefinition => {
                // `<dataQuality|modelQuality|modelBias|modelExplainability>JobOutputConfig`.
                let output = p.as_object().and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.ends_with("JobOutputConfig"))
                        .map(|(_, v)| v)
                });
                Observed {
                    subnets: list(p, &["networkConfig", "vpcConfig", "subnets"]),
                    network_isolation: flag(p, &["networkConfig", "enableNetworkIsolation"]),
                    inter_container_encryption: flag(
                        p,
                        &["networkConfig", "enableInterContainerTrafficEncryption"],
                    ),
                    volume_kms_key: text(p, &["jobResources", "clusterConfig", "volumeKmsKeyId"]),
                    output_kms_key: output.and_then(|o| text(o, &["kmsKeyId"])),
                    instance_types: text(p, &["jobResources", "clusterConfig", "instanceType"])
                        .into_iter()
                        .collect(),
                    instance_count: number(p, &["jobResources", "clusterConfig", "instanceCount"]),
                    ..Observed::default()
                }
            }
            Kind::Domain => Observed {
                subnets: list(p, &["subnetIds"]),
                app_network_access_type: text(p, &["appNetworkAccessType"]),
                ..Observed::default()
            },
        }
    }

    /// Facts true of both `a` and `b` (for resources made of several definitions). Each definition is
    /// judged on its own instances first: what passes for both passes for the whole.
    pub fn weakest(a: Observed, b: Observed) -> Observed {
        let volume = a.volume_encrypted() && b.volume_encrypted();
        let traffic =
            a.inter_container_traffic_protected() && b.inter_container_traffic_protected();
        fn both<T: PartialEq>(a: Option<T>, b: Option<T>) -> Option<T> {
            if a == b { a } else { None }
        }
        fn all(a: Option<bool>, b: Option<bool>) -> Option<bool> {
            match (a, b) {
                (Some(true), Some(true)) => Some(true),
                (None, None) => None,
                _ => Some(false),
            }
        }
        Observed {
            subnets: if a.subnets.is_empty() || b.subnets.is_empty() {
                Vec::new()
            } else {
                a.subnets
            },
            network_isolation: all(a.network_isolation, b.network_isolation),
            // Protected in both: recorded as encrypted; else as not (the count no longer matters).
            inter_container_encryption: Some(traffic),
            instance_count: if traffic {
                None
            } else {
                a.instance_count.max(b.instance_count)
            },
            volume_kms_key: if volume {
                a.volume_kms_key.or(b.volume_kms_key)
            } else {
                None
            },
            instance_types: if volume {
                [a.instance_types, b.instance_types].concat()
            } else {
                Vec::new()
            },
            output_kms_key: a.output_kms_key.and(b.output_kms_key),
            variant_instance_counts: [a.variant_instance_counts, b.variant_instance_counts]
                .concat(),
            production: a.production || b.production,
            judged_elsewhere: a.judged_elsewhere && b.judged_elsewhere,
            data_stores: [a.data_stores, b.data_stores].concat(),
            direct_internet_access: both(a.direct_internet_access, b.direct_internet_access),
            root_access: both(a.root_access, b.root_access),
            app_network_access_type: both(a.app_network_access_type, b.app_network_access_type),
            platform: both(a.platform, b.platform),
            image_access_modes: [a.image_access_modes, b.image_access_modes].concat(),
        }
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// A non-empty string at `path`.
pub fn text(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// A boolean at `path` (CloudTrail sometimes records booleans as strings).
fn flag(v: &Value, path: &[&str]) -> Option<bool> {
    match at(v, path)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A whole number at `path` (CloudTrail may record numbers as strings).
fn number(v: &Value, path: &[&str]) -> Option<i64> {
    match at(v, path)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The non-empty strings of the list at `path`.
fn list(v: &Value, path: &[&str]) -> Vec<String> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn place() -> Place {
        Place {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
        }
    }

    #[test]
    fn arn_from_response_or_built_from_the_name() {
        let r = Resource::from_call(
            Kind::NotebookInstance,
            &json!({"notebookInstanceName": "Lab"}),
            &Value::Null,
            &place(),
        )
        .unwrap();
        assert_eq!(
            r.arn,
            "arn:aws:sagemaker:eu-west-1:111122223333:notebook-instance/lab"
        );
        let r = Resource::from_call(
            Kind::Model,
            &json!({"modelName": "m"}),
            &json!({"modelArn": "arn:x"}),
            &place(),
        )
        .unwrap();
        assert_eq!(r.arn, "arn:x");
        assert!(
            Resource::from_call(
                Kind::Model,
                &json!({"modelName": null}),
                &Value::Null,
                &place()
            )
            .is_none()
        );
    }

    #[test]
    fn update_domain_is_named_by_id() {
        let r = Resource::from_call(
            Kind::Domain,
            &json!({"domainId": "d-abc"}),
            &Value::Null,
            &place(),
        )
        .unwrap();
        assert_eq!(r.name, "d-abc");
        assert!(r.arn.ends_with(":domain/d-abc"));
    }

    #[test]
    fn tuning_job_counts_its_weakest_definition() {
        let strong = json!({"vpcConfig": {"subnets": ["s"]}, "enableNetworkIsolation": true,
            "resourceConfig": {"volumeKmsKeyId": "k"}, "outputDataConfig": {"kmsKeyId": "k"},
            "enableInterContainerTrafficEncryption": true});
        let weak = json!({"enableNetworkIsolation": false});
        let o = Observed::from_request(
            Kind::TuningJob,
            &json!({"trainingJobDefinitions": [strong.clone(), weak]}),
        );
        assert!(o.subnets.is_empty());
        assert_eq!(o.network_isolation, Some(false));
        assert_eq!(o.volume_kms_key, None);
        let o = Observed::from_request(Kind::TuningJob, &json!({"trainingJobDefinition": strong}));
        assert_eq!(o.subnets, vec!["s"]);
        assert_eq!(o.inter_container_encryption, Some(true));
    }

    #[test]
    fn null_blank_and_mistyped_fields_are_not_configured() {
        let o = Observed::from_request(
            Kind::TrainingJob,
            &json!({"vpcConfig": null, "enableNetworkIsolation": "yes",
                    "resourceConfig": {"volumeKmsKeyId": " "}, "outputDataConfig": 7}),
        );
        assert_eq!(o, Observed::default());
        let o = Observed::from_request(
            Kind::TrainingJob,
            &json!({"enableNetworkIsolation": "true"}),
        );
        assert_eq!(o.network_isolation, Some(true));
    }
}
