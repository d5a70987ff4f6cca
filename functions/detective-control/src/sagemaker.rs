//! The SageMaker adapter: stop/delete a resource, describe one into [`Observed`] facts, and list what a
//! sweep must look at. Nothing here decides compliance.

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    HyperParameterTrainingJobDefinition, HyperParameterTuningJobStatus, NotebookInstanceStatus,
    OutputDataConfig, ProcessingJobStatus, ResourceConfig, TrainingJobStatus, TransformJobStatus,
    VpcConfig,
};
use shared::Error;

use crate::resource::{Kind, Observed, Resource};
use shared::error::found;

use crate::respond::{Action, Taken};

/// A resource as SageMaker describes it now.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub resource: Resource,
    pub observed: Observed,
    pub status: Option<String>,
    /// When SageMaker created it (to tell the resource an event created from a newer one of the
    /// same name).
    pub created: Option<DateTime>,
}

pub struct SageMaker {
    client: Client,
}

fn code_and_message<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> (Option<String>, String) {
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| DisplayErrorContext(err).to_string());
    (err.code().map(str::to_owned), message)
}

fn subnets(vpc: Option<&VpcConfig>) -> Vec<String> {
    vpc.map(|v| v.subnets().to_vec()).unwrap_or_default()
}

fn training_like(
    vpc: Option<&VpcConfig>,
    isolation: Option<bool>,
    encryption: Option<bool>,
    resources: Option<&ResourceConfig>,
    output: Option<&OutputDataConfig>,
) -> Observed {
    Observed {
        subnets: subnets(vpc),
        network_isolation: isolation,
        inter_container_encryption: encryption,
        volume_kms_key: resources
            .and_then(|r| r.volume_kms_key_id())
            .map(str::to_owned),
        output_kms_key: output.and_then(|o| o.kms_key_id()).map(str::to_owned),
        instance_types: resources
            .map(|r| {
                r.instance_type()
                    .into_iter()
                    .chain(r.instance_groups().iter().filter_map(|g| g.instance_type()))
                    .map(|t| t.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        instance_count: resources.and_then(|r| {
            r.instance_count().map(i64::from).or_else(|| {
                (!r.instance_groups().is_empty()).then(|| {
                    r.instance_groups()
                        .iter()
                        .filter_map(|g| g.instance_count())
                        .map(i64::from)
                        .sum()
                })
            })
        }),
        ..Observed::default()
    }
}

fn tuning_definition(d: &HyperParameterTrainingJobDefinition) -> Observed {
    training_like(
        d.vpc_config(),
        d.enable_network_isolation(),
        d.enable_inter_container_traffic_encryption(),
        d.resource_config(),
        d.output_data_config(),
    )
}

fn owned(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

impl SageMaker {
    pub fn new(client: Client) -> Self {
        SageMaker { client }
    }

    /// Stops or deletes the resource; never fails: the outcome says what happened.
    pub async fn act(&self, action: Action, r: &Resource) -> Taken {
        let c = &self.client;
        let n = r.name.as_str();
        let result = match (action, r.kind) {
            // Kinds whose row in KINDS says they are never acted on.
            (Action::None, _)
            | (
                _,
                Kind::Domain
                | Kind::Endpoint
                | Kind::DataQualityJobDefinition
                | Kind::ModelQualityJobDefinition
                | Kind::ModelBiasJobDefinition
                | Kind::ModelExplainabilityJobDefinition
                | Kind::MonitoringSchedule
                | Kind::FeatureGroup
                | Kind::InferenceExperiment,
            ) => return Taken::not_taken("nothing to do"),
            (_, Kind::TrainingJob) => c
                .stop_training_job()
                .training_job_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::ProcessingJob) => c
                .stop_processing_job()
                .processing_job_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::TransformJob) => c
                .stop_transform_job()
                .transform_job_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::TuningJob) => c
                .stop_hyper_parameter_tuning_job()
                .hyper_parameter_tuning_job_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::NotebookInstance) => c
                .stop_notebook_instance()
                .notebook_instance_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::Model) => c
                .delete_model()
                .model_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
            (_, Kind::EndpointConfig) => c
                .delete_endpoint_config()
                .endpoint_config_name(n)
                .send()
                .await
                .map(drop)
                .map_err(|e| code_and_message(&e)),
        };
        match result {
            Ok(()) => Taken::done(action),
            Err((code, message)) => Taken::from_error(r.kind, action, code.as_deref(), &message),
        }
    }

    /// The endpoints that use a model or endpoint config (an endpoint config through the one it runs,
    /// or the one an update is deploying; a model through any variant of those configs). SageMaker
    /// lets both be deleted under a running endpoint, which then keeps serving on what is gone.
    pub async fn users(&self, kind: Kind, name: &str) -> Result<Vec<String>, Error> {
        let c = &self.client;
        let endpoints = c
            .list_endpoints()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::aws("ListEndpoints", e))?;
        let mut users = Vec::new();
        for e in endpoints {
            let Some(endpoint) = e.endpoint_name() else {
                continue;
            };
            let Some(d) = found(
                "DescribeEndpoint",
                c.describe_endpoint().endpoint_name(endpoint).send().await,
            )?
            else {
                continue;
            };
            let mut configs: Vec<String> = d
                .endpoint_config_name()
                .map(str::to_owned)
                .into_iter()
                .collect();
            if let Some(pending) = d
                .pending_deployment_summary()
                .and_then(|p| p.endpoint_config_name())
            {
                configs.push(pending.to_owned());
            }
            let uses = match kind {
                Kind::EndpointConfig => configs.iter().any(|c| c == name),
                Kind::Model => {
                    let mut any = false;
                    for config in &configs {
                        if let Some(cfg) = found(
                            "DescribeEndpointConfig",
                            c.describe_endpoint_config()
                                .endpoint_config_name(config)
                                .send()
                                .await,
                        )? {
                            any |= cfg
                                .production_variants()
                                .iter()
                                .chain(cfg.shadow_production_variants())
                                .any(|v| v.model_name() == Some(name));
                        }
                    }
                    any
                }
                _ => false,
            };
            if uses {
                users.push(endpoint.to_owned());
            }
        }
        Ok(users)
    }

    /// The resource as it is now; `None` when it no longer exists.
    pub async fn describe(&self, kind: Kind, name: &str) -> Result<Option<Found>, Error> {
        let c = &self.client;
        let make = |arn: Option<&str>,
                    observed: Observed,
                    status: Option<&str>,
                    created: Option<&DateTime>| Found {
            resource: Resource {
                kind,
                name: name.to_owned(),
                arn: arn.unwrap_or(name).to_owned(),
            },
            observed,
            status: status.map(str::to_owned),
            created: created.copied(),
        };
        Ok(match kind {
            Kind::TrainingJob => found(
                "DescribeTrainingJob",
                c.describe_training_job()
                    .training_job_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let o = training_like(
                    d.vpc_config(),
                    d.enable_network_isolation(),
                    d.enable_inter_container_traffic_encryption(),
                    d.resource_config(),
                    d.output_data_config(),
                );
                make(
                    d.training_job_arn(),
                    o,
                    d.training_job_status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
            Kind::ProcessingJob => found(
                "DescribeProcessingJob",
                c.describe_processing_job()
                    .processing_job_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let net = d.network_config();
                let cluster = d.processing_resources().and_then(|r| r.cluster_config());
                let o = Observed {
                    subnets: subnets(net.and_then(|n| n.vpc_config())),
                    network_isolation: net.and_then(|n| n.enable_network_isolation()),
                    inter_container_encryption: net
                        .and_then(|n| n.enable_inter_container_traffic_encryption()),
                    volume_kms_key: owned(
                        d.processing_resources()
                            .and_then(|r| r.cluster_config())
                            .and_then(|c| c.volume_kms_key_id()),
                    ),
                    output_kms_key: owned(
                        d.processing_output_config().and_then(|o| o.kms_key_id()),
                    ),
                    instance_types: cluster
                        .and_then(|c| c.instance_type())
                        .map(|t| t.as_str().to_owned())
                        .into_iter()
                        .collect(),
                    instance_count: cluster.and_then(|c| c.instance_count()).map(i64::from),
                    ..Observed::default()
                };
                make(
                    d.processing_job_arn(),
                    o,
                    d.processing_job_status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
            Kind::TransformJob => found(
                "DescribeTransformJob",
                c.describe_transform_job()
                    .transform_job_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let o = Observed {
                    volume_kms_key: owned(
                        d.transform_resources().and_then(|r| r.volume_kms_key_id()),
                    ),
                    output_kms_key: owned(d.transform_output().and_then(|o| o.kms_key_id())),
                    instance_types: d
                        .transform_resources()
                        .and_then(|r| r.instance_type())
                        .map(|t| t.as_str().to_owned())
                        .into_iter()
                        .collect(),
                    instance_count: d
                        .transform_resources()
                        .and_then(|r| r.instance_count())
                        .map(i64::from),
                    ..Observed::default()
                };
                make(
                    d.transform_job_arn(),
                    o,
                    d.transform_job_status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
            Kind::TuningJob => found(
                "DescribeHyperParameterTuningJob",
                c.describe_hyper_parameter_tuning_job()
                    .hyper_parameter_tuning_job_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let o = d
                    .training_job_definition()
                    .into_iter()
                    .chain(d.training_job_definitions())
                    .map(tuning_definition)
                    .reduce(Observed::weakest)
                    .unwrap_or_default();
                make(
                    d.hyper_parameter_tuning_job_arn(),
                    o,
                    d.hyper_parameter_tuning_job_status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
            Kind::Model => found(
                "DescribeModel",
                c.describe_model().model_name(name).send().await,
            )?
            .map(|d| {
                let o = Observed {
                    subnets: subnets(d.vpc_config()),
                    network_isolation: d.enable_network_isolation(),
                    image_access_modes: d
                        .primary_container()
                        .into_iter()
                        .chain(d.containers())
                        .map(|c| {
                            c.image_config()
                                .and_then(|i| i.repository_access_mode())
                                .map(|m| m.as_str().to_owned())
                        })
                        .collect(),
                    ..Observed::default()
                };
                make(d.model_arn(), o, None, d.creation_time())
            }),
            Kind::NotebookInstance => found(
                "DescribeNotebookInstance",
                c.describe_notebook_instance()
                    .notebook_instance_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let o = Observed {
                    subnets: owned(d.subnet_id()).into_iter().collect(),
                    volume_kms_key: owned(d.kms_key_id()),
                    direct_internet_access: d
                        .direct_internet_access()
                        .map(|v| v.as_str().to_owned()),
                    root_access: d.root_access().map(|v| v.as_str().to_owned()),
                    platform: owned(d.platform_identifier()),
                    instance_types: d
                        .instance_type()
                        .map(|t| t.as_str().to_owned())
                        .into_iter()
                        .collect(),
                    ..Observed::default()
                };
                make(
                    d.notebook_instance_arn(),
                    o,
                    d.notebook_instance_status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
            Kind::EndpointConfig => found(
                "DescribeEndpointConfig",
                c.describe_endpoint_config()
                    .endpoint_config_name(name)
                    .send()
                    .await,
            )?
            .map(|d| {
                let o = Observed {
                    volume_kms_key: owned(d.kms_key_id()),
                    variant_instance_counts: d
                        .production_variants()
                        .iter()
                        .filter(|v| v.serverless_config().is_none())
                        .map(|v| v.initial_instance_count().map(i64::from).unwrap_or(1))
                        .collect(),
                    production: crate::resource::is_production(name),
                    instance_types: d
                        .production_variants()
                        .iter()
                        .filter_map(|v| v.instance_type())
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                    ..Observed::default()
                };
                make(d.endpoint_config_arn(), o, None, d.creation_time())
            }),
            Kind::Endpoint => {
                let Some(d) = found(
                    "DescribeEndpoint",
                    c.describe_endpoint().endpoint_name(name).send().await,
                )?
                else {
                    return Ok(None);
                };
                // An endpoint is as compliant as the endpoint config it runs; it is production by
                // its own name.
                let mut config = match d.endpoint_config_name() {
                    Some(config) => Box::pin(self.describe(Kind::EndpointConfig, config))
                        .await?
                        .map(|f| f.observed)
                        .unwrap_or_default(),
                    None => Observed::default(),
                };
                config.production = crate::resource::is_production(name);
                Some(make(
                    d.endpoint_arn(),
                    config,
                    d.endpoint_status().map(|s| s.as_str()),
                    d.creation_time(),
                ))
            }
            // Never acted on, not swept: judged from their requests only.
            Kind::DataQualityJobDefinition
            | Kind::ModelQualityJobDefinition
            | Kind::ModelBiasJobDefinition
            | Kind::ModelExplainabilityJobDefinition
            | Kind::MonitoringSchedule
            | Kind::FeatureGroup
            | Kind::InferenceExperiment => {
                return Err(Error::invalid(format!(
                    "a {} is judged from its request, never described",
                    kind.label()
                )));
            }
            Kind::Domain => found(
                "DescribeDomain",
                c.describe_domain().domain_id(name).send().await,
            )?
            .map(|d| {
                let o = Observed {
                    subnets: d.subnet_ids().to_vec(),
                    app_network_access_type: d
                        .app_network_access_type()
                        .map(|v| v.as_str().to_owned()),
                    ..Observed::default()
                };
                make(
                    d.domain_arn(),
                    o,
                    d.status().map(|s| s.as_str()),
                    d.creation_time(),
                )
            }),
        })
    }

    /// Names of what a sweep looks at: running jobs, running or starting notebooks, and models and
    /// endpoint configs created after `since`.
    /// What a sweep looks at: running jobs and notebooks, and the models and endpoint configs created
    /// after `since` (all of them when `None`: the full sweep).
    pub async fn sweep_candidates(
        &self,
        since: Option<DateTime>,
    ) -> Result<Vec<(Kind, String)>, Error> {
        let c = &self.client;
        let mut out = Vec::new();
        macro_rules! collect {
            ($op:literal, $kind:expr, $request:expr, $name:ident) => {
                for item in $request
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| Error::aws($op, e))?
                {
                    if let Some(n) = item.$name() {
                        out.push(($kind, n.to_owned()));
                    }
                }
            };
        }
        collect!(
            "ListTrainingJobs",
            Kind::TrainingJob,
            c.list_training_jobs()
                .status_equals(TrainingJobStatus::InProgress),
            training_job_name
        );
        collect!(
            "ListProcessingJobs",
            Kind::ProcessingJob,
            c.list_processing_jobs()
                .status_equals(ProcessingJobStatus::InProgress),
            processing_job_name
        );
        collect!(
            "ListTransformJobs",
            Kind::TransformJob,
            c.list_transform_jobs()
                .status_equals(TransformJobStatus::InProgress),
            transform_job_name
        );
        collect!(
            "ListHyperParameterTuningJobs",
            Kind::TuningJob,
            c.list_hyper_parameter_tuning_jobs()
                .status_equals(HyperParameterTuningJobStatus::InProgress),
            hyper_parameter_tuning_job_name
        );
        for status in [
            NotebookInstanceStatus::InService,
            NotebookInstanceStatus::Pending,
        ] {
            collect!(
                "ListNotebookInstances",
                Kind::NotebookInstance,
                c.list_notebook_instances().status_equals(status),
                notebook_instance_name
            );
        }
        collect!(
            "ListModels",
            Kind::Model,
            c.list_models().set_creation_time_after(since),
            model_name
        );
        collect!(
            "ListEndpointConfigs",
            Kind::EndpointConfig,
            c.list_endpoint_configs().set_creation_time_after(since),
            endpoint_config_name
        );
        Ok(out)
    }
}
