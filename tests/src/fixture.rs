//! The one test bed the harness tests, the demo and the bench start from: moto, the twin, and a stack
//! of the project's template "deployed" into them — its alert topic (with an inbox to read it), its
//! DynamoDB tables, its event rules — so that every function starts from the template's own
//! `Environment` ([`Fixture::function`]) and finds what that environment names.

use aws_config::SdkConfig;

use crate::alerts::Inbox;
use crate::events::Router;
use crate::harness::{Config, Harness};
use crate::moto::Moto;
use crate::stack::Stack;
use crate::twin::Twin;

pub struct Fixture {
    pub moto: Moto,
    pub twin: Twin,
    /// SDK configuration for moto (use [`Fixture::sagemaker`] / [`Fixture::codepipeline`] for the
    /// twin's services).
    pub config: SdkConfig,
    /// The stack, with what the fixture made for it.
    pub stack: Stack,
    /// What the alert topic (`AlertTopic`) publishes.
    pub inbox: Inbox,
}

impl Fixture {
    /// The project's stack as the test bed deploys it ([`Stack::project`]).
    pub async fn start() -> Fixture {
        Fixture::with(Stack::project()).await
    }

    /// `stack` deployed locally.
    pub async fn with(stack: Stack) -> Fixture {
        // Boxed: the setup's futures are large, and a test's own future holds this one.
        Box::pin(Fixture::deploy(stack, true)).await
    }

    /// `stack` deployed for measurements: the alert topic has no subscriber (see [`Inbox::unread`]).
    pub async fn measured(stack: Stack) -> Fixture {
        Box::pin(Fixture::deploy(stack, false)).await
    }

    async fn deploy(stack: Stack, read_alerts: bool) -> Fixture {
        let moto = Moto::start().await;
        let twin = Twin::start(0, Some(moto.endpoint.clone()))
            .await
            .expect("twin");
        let config = moto.sdk_config().await;
        let topic = stack.physical("AlertTopic");
        let name = topic.rsplit(':').next().unwrap_or(&topic);
        let inbox = if read_alerts {
            Inbox::create(&config, name).await
        } else {
            Inbox::unread(&config, name).await
        };
        let tables: Vec<String> = stack
            .resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
            .map(|(id, _)| stack.physical(id))
            .collect();
        for table in tables {
            moto.key_table(&table).await;
        }
        // The HMAC keys the functions call (the continuations' seal); the other keys only encrypt
        // what the services store, which moto does not check.
        let hmac_keys: Vec<(String, String)> = stack
            .resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::KMS::Key"))
            .filter_map(|(id, r)| {
                let spec = r["Properties"]["KeySpec"].as_str()?;
                spec.starts_with("HMAC_")
                    .then(|| (id.to_owned(), spec.to_owned()))
            })
            .collect();
        let mut stack = stack;
        for (id, spec) in hmac_keys {
            let (key_id, arn) = moto.hmac_key(&spec).await;
            stack = stack
                .resource(&id, key_id)
                .resource(&format!("{id}.Arn"), arn);
        }
        let stack = stack.resource("AlertTopic", &inbox.topic_arn);
        Fixture {
            moto,
            twin,
            config,
            stack,
            inbox,
        }
    }

    /// The harness configuration of the template's function `logical`: its binary, name and
    /// environment from the template, its AWS the fixture's.
    pub fn function(&self, logical: &str) -> Config {
        self.stack
            .function(logical)
            .local_aws(&self.moto.endpoint, &self.twin.endpoint)
    }

    /// Starts the template's function `logical` as [`Fixture::function`] configures it.
    pub async fn start_function(&self, logical: &str) -> Harness {
        Harness::start(self.function(logical)).await
    }

    /// The template's event rules, installed in moto from now on.
    pub async fn router(&self) -> Router {
        Router::install(&self.moto.endpoint, &self.stack.routes()).await
    }

    pub fn sagemaker(&self) -> aws_sdk_sagemaker::Client {
        self.twin.sagemaker(&self.config)
    }

    pub fn codepipeline(&self) -> aws_sdk_codepipeline::Client {
        self.twin.codepipeline(&self.config)
    }
}
