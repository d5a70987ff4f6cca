//! `pipeline-probe` — a CodePipeline Lambda invoke action for the twin's pipeline tests. It reads the
//! `CodePipeline.job` event: `UserParameters` JSON `{"Continue": N, "Fail": bool}`; it answers
//! `PutJobSuccessResult` with a continuation token until it has been continued N times, then with
//! output variables (`Params` = the UserParameters it saw, `Invocations`), or `PutJobFailureResult`.
//! Test infrastructure only; never deployed.

use aws_sdk_codepipeline::types::{FailureDetails, FailureType};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(
    client: &aws_sdk_codepipeline::Client,
    event: LambdaEvent<Value>,
) -> Result<Value, shared::Error> {
    let job = &event.payload["CodePipeline.job"];
    let id = job["id"]
        .as_str()
        .ok_or_else(|| shared::Error::invalid("CodePipeline.job.id missing"))?;
    let raw = job["data"]["actionConfiguration"]["configuration"]["UserParameters"]
        .as_str()
        .unwrap_or("{}");
    let params: Value = serde_json::from_str(raw).unwrap_or(json!({}));
    let done: u64 = job["data"]["continuationToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let wanted = params["Continue"].as_u64().unwrap_or(0);
    if params["Fail"] == true {
        client
            .put_job_failure_result()
            .job_id(id)
            .failure_details(
                FailureDetails::builder()
                    .r#type(FailureType::JobFailed)
                    .message("the probe failed as asked")
                    .build()
                    .map_err(|e| shared::Error::other(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| shared::Error::aws("codepipeline:PutJobFailureResult", e))?;
        return Ok(json!({"failed": id}));
    }
    let request = client.put_job_success_result().job_id(id);
    let request = if done < wanted {
        request.continuation_token((done + 1).to_string())
    } else {
        request
            .output_variables("Params", raw)
            .output_variables("Invocations", (done + 1).to_string())
    };
    request
        .send()
        .await
        .map_err(|e| shared::Error::aws("codepipeline:PutJobSuccessResult", e))?;
    Ok(json!({"job": id, "continued": done}))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let config = shared::aws::config().await;
    let client = aws_sdk_codepipeline::Client::new(&config);
    let client = &client;
    lambda_runtime::run(service_fn(move |event| async move {
        handle(client, event).await
    }))
    .await
}
