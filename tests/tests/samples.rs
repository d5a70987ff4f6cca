//! The sample events of `events/<function>/` go through their functions as `try-event` runs them (the
//! README's "Try one function"): each function's own sample, and one of detective-control's (all of
//! its samples are the fixtures of `detective_control`'s table test as well).

use testbed::sample::{events_dir, run};

#[tokio::test]
async fn every_function_answers_its_sample_events() {
    let mut tried = 0;
    for dir in std::fs::read_dir(events_dir()).expect("events/") {
        let dir = dir.expect("entry").path();
        let function = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("a function's folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        if function == "detective-control" {
            files.retain(|p| p.ends_with("training-job-noncompliant.json"));
        }
        for path in files {
            let out = run(&function, &path).await.unwrap();
            assert!(
                out.ok,
                "{}: {:#?}\n{:#?}",
                path.display(),
                out.answer,
                out.logs
            );
            // Every AWS call of the sampled invocation is a subsegment under Lambda's trace.
            assert!(
                !out.segments.is_empty(),
                "{}: no X-Ray subsegment",
                path.display()
            );
            for segment in &out.segments {
                assert_eq!(segment["type"], "subsegment", "{segment}");
                assert!(
                    segment["trace_id"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("1-"))
                        && segment["parent_id"].as_str().is_some_and(|p| p.len() == 16)
                        && segment["aws"]["operation"].is_string()
                        && segment["end_time"].as_f64() >= segment["start_time"].as_f64(),
                    "{segment}"
                );
            }
            match function.as_str() {
                // The seeded Staging OU: 3 + 2 + 2 + 1 ACTIVE accounts, nested ones included.
                "org-accounts" => {
                    assert_eq!(out.answer["Data"]["AccountCount"], "8", "{:#?}", out.answer)
                }
                "cross-account-access" => assert!(
                    out.answer["Data"]["BucketPolicySid"]
                        .as_str()
                        .is_some_and(|sid| sid.starts_with("SecureMlopsModelRead")),
                    "{:#?}",
                    out.answer
                ),
                // The approved version's deployment starts.
                "model-approval" => {
                    assert_eq!(out.answer["action"], "started", "{:#?}", out.answer)
                }
                // The staging stack set is deployed to the staging OU and the job succeeds with it.
                "stackset-deploy" => {
                    assert_eq!(out.answer["result"], "Succeeded", "{:#?}", out.answer);
                    assert!(
                        out.answer["outputVariables"]["StackSetName"]
                            .as_str()
                            .is_some_and(|n| n.contains("churn")),
                        "{:#?}",
                        out.answer
                    );
                    assert!(
                        out.segments
                            .iter()
                            .any(|s| s["aws"]["operation"] == "CreateStackInstances"),
                        "{:#?}",
                        out.segments
                    );
                }
                "studio-domain" | "studio-user-profile" => {
                    assert_eq!(out.answer["Status"], "SUCCESS", "{:#?}", out.answer)
                }
                "detective-control" => {
                    assert_eq!(
                        out.answer["findings"][0]["action"], "stop",
                        "{:#?}",
                        out.answer
                    );
                    assert_eq!(
                        out.answer["findings"][0]["result"], "done",
                        "{:#?}",
                        out.answer
                    );
                }
                _ => {}
            }
            tried += 1;
        }
    }
    assert!(tried >= 7, "{tried} samples");
}
