//! Sends a [`Report`]: the alert to the (KMS-encrypted) SNS topic and, when enabled, one AWS Security Hub
//! finding per failed check, upserted by a deterministic id and archived once the resource is gone.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Compliance, ComplianceStatus, RecordState, Resource as HubResource,
    Severity, SeverityLabel,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use shared::Error;

use crate::alert::Report;
use crate::checks;

pub struct Notifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
}

fn now() -> String {
    DateTime::from(std::time::SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

impl Notifier {
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: String) -> Self {
        Notifier { sns, topic_arn }
    }

    /// A plain alert (no resource: e.g. a member account the control cannot reach).
    pub async fn publish(&self, subject: &str, body: &serde_json::Value) -> Result<(), Error> {
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| Error::aws("Publish", e))
    }

    /// The alert and, with `hub` (the Security Hub of the resource's account), the findings, sent
    /// together (neither waits for the other); either failing fails the send.
    pub async fn send(
        &self,
        report: &Report<'_>,
        hub: Option<&aws_sdk_securityhub::Client>,
    ) -> Result<(), Error> {
        let (subject, body) = (report.subject(), report.body());
        let alert = self.publish(&subject, &body);
        let findings = async {
            let Some(hub) = hub else {
                return Ok(());
            };
            let out = hub
                .batch_import_findings()
                .set_findings(Some(findings(report)?))
                .send()
                .await
                .map_err(|e| Error::aws("BatchImportFindings", e))?;
            match out.failed_findings().first() {
                Some(failure) => Err(Error::other(format!(
                    "BatchImportFindings rejected finding {}: {} {}",
                    failure.id().unwrap_or_default(),
                    failure.error_code().unwrap_or_default(),
                    failure.error_message().unwrap_or_default()
                ))),
                None => Ok(()),
            }
        };
        let (alert, findings) = tokio::join!(alert, findings);
        alert.and(findings)
    }
}

/// One ASFF finding per failed check.
pub fn findings(report: &Report<'_>) -> Result<Vec<AwsSecurityFinding>, Error> {
    let place = &report.context.place;
    let now = now();
    let state = if report.taken.resolves(report.resource.kind) {
        RecordState::Archived
    } else {
        RecordState::Active
    };
    report
        .failed
        .iter()
        .map(|rule| -> Result<AwsSecurityFinding, Error> {
            let label = match rule.severity {
                checks::Severity::High => SeverityLabel::High,
                checks::Severity::Medium => SeverityLabel::Medium,
            };
            let resource = HubResource::builder()
                .r#type(report.resource.kind.asff_type())
                .id(&report.resource.arn)
                .region(&place.region)
                .build();
            let compliance = Compliance::builder()
                .status(ComplianceStatus::Failed)
                .set_related_requirements(
                    rule.control_for(report.resource.kind)
                        .map(|c| vec![format!("AWS Foundational Security Best Practices {c}")]),
                )
                .build();
            Ok(AwsSecurityFinding::builder()
                .schema_version("2018-10-08")
                .id(report.finding_id(rule))
                .product_arn(format!(
                    "arn:{}:securityhub:{}:{}:product/{}/default",
                    place.partition, place.region, place.account, place.account
                ))
                .generator_id(format!("secure-mlops/detective-control/{}", rule.id))
                .aws_account_id(&place.account)
                .types("Software and Configuration Checks/AWS Security Best Practices")
                .created_at(&now)
                .updated_at(&now)
                .severity(Severity::builder().label(label).build())
                .title(format!(
                    "SageMaker {} {} fails {}",
                    report.resource.kind.label(),
                    report.resource.name,
                    rule.id
                ))
                .description(format!(
                    "Required: {}. Action: {:?} - {}.",
                    rule.requires, report.taken.result, report.taken.detail
                ))
                .resources(resource)
                .compliance(compliance)
                .record_state(state.clone())
                .product_fields("secure-mlops/check", rule.id)
                .product_fields("secure-mlops/event-id", &report.context.event_id)
                .build())
        })
        .collect()
}
