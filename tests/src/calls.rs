//! The AWS calls each function makes, as the test bed saw them: the harness passes every call of the
//! function it runs on to the emulator it was meant for (moto or the twin) and appends its IAM action
//! to `<target>/<profile>/iam-calls/<binary>` — the calls made with the function's own credentials;
//! those made as a role it assumed in another account go to `<binary>@assumed`. `make test` empties
//! that folder first and checks it against the roles of `infra/template.yaml` (and the member roles of
//! the stack set templates) afterwards (`iam-check`).

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, Method, Uri};

use crate::harness::Config;

/// Where the calls of the binaries next to `binary` are logged.
pub fn log_dir(binary: &Path) -> PathBuf {
    binary
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("iam-calls")
}

/// Sends the function's AWS calls through the harness (which records and forwards them): every
/// `AWS_ENDPOINT_URL[_<SERVICE>]` pointing elsewhere becomes a forward to it. A config that already
/// forwards (the benchmark) or records only (`{harness}`) is left as it is.
pub fn route_through_harness(mut config: Config) -> Config {
    if !config.forward.is_empty() {
        return config;
    }
    let mut forward = Vec::new();
    for (key, value) in &mut config.env {
        if value.is_empty() || value.contains("{harness}") {
            continue;
        }
        let service = match key.as_str() {
            "AWS_ENDPOINT_URL" => "*".to_owned(),
            other => match other.strip_prefix("AWS_ENDPOINT_URL_") {
                None | Some("LAMBDA") => continue,
                Some("EFS") => "elasticfilesystem".to_owned(),
                Some("CLOUDWATCH") => "monitoring".to_owned(),
                Some("SERVICE_CATALOG") => "servicecatalog".to_owned(),
                Some(service) => service.to_ascii_lowercase(),
            },
        };
        forward.push((service, std::mem::replace(value, "{harness}".to_owned())));
    }
    // Specific services first: `*` only catches the rest.
    forward.sort_by_key(|(s, _)| s == "*");
    config.forward = forward;
    config
}

/// The operation of a request, by protocol: JSON (`X-Amz-Target`), query (`Action=`), or the REST
/// routes of the services this project calls. `?<method> <path>` when unknown.
pub fn operation(
    service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if let Some(action) = String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
    {
        return action.to_owned();
    }
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    let has = |key: &str| query.split('&').any(|kv| kv.split('=').next() == Some(key));
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let m = method.as_str();
    let op = match (service, m, segments.as_slice()) {
        ("s3", "GET", [_]) if has("policy") => "GetBucketPolicy",
        ("s3", "PUT", [_]) if has("policy") => "PutBucketPolicy",
        ("s3", "DELETE", [_]) if has("policy") => "DeleteBucketPolicy",
        ("s3", "GET", [_]) if has("list-type") => "ListObjectsV2",
        ("s3", "GET", [_]) => "ListObjects",
        ("s3", "PUT", [_]) => "CreateBucket",
        ("s3", "HEAD", [_]) => "HeadBucket",
        ("s3", "GET", [_, ..]) => "GetObject",
        ("s3", "HEAD", [_, ..]) => "HeadObject",
        ("s3", "PUT", [_, ..]) => "PutObject",
        ("s3", "DELETE", [_, ..]) => "DeleteObject",
        ("elasticfilesystem", "GET", [_, "mount-targets", ..]) => "DescribeMountTargets",
        ("elasticfilesystem", "DELETE", [_, "mount-targets", _]) => "DeleteMountTarget",
        ("elasticfilesystem", "GET", [_, "file-systems", ..]) => "DescribeFileSystems",
        ("elasticfilesystem", "DELETE", [_, "file-systems", _]) => "DeleteFileSystem",
        ("securityhub", "POST", ["findings", "import"]) => "BatchImportFindings",
        ("lambda", "POST", [_, "functions", _, "invocations"]) => "Invoke",
        _ => return format!("?{m} {path}"),
    };
    op.to_owned()
}

/// The IAM action a call needs; `None` for calls that need no permission.
pub fn iam_action(service: &str, operation: &str) -> Option<String> {
    let action = match (service, operation) {
        ("sts", "GetCallerIdentity") => return None,
        ("lambda", "Invoke") => "lambda:InvokeFunction".to_owned(),
        ("s3", "ListObjectsV2" | "ListObjects") => "s3:ListBucket".to_owned(),
        ("s3", "HeadObject") => "s3:GetObject".to_owned(),
        ("s3", "HeadBucket") => "s3:ListBucket".to_owned(),
        (service, operation) => format!("{service}:{operation}"),
    };
    Some(action)
}

/// Appends one call of `binary` to its log (best effort: a log that cannot be written fails the
/// check later, not the test now).
pub fn record(binary: &Path, service: &str, operation: &str) {
    let Some(name) = binary.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    append(binary, name, service, operation);
}

/// Appends one call `binary` made as a role it assumed to the log `<binary>@assumed`.
pub fn record_assumed(binary: &Path, service: &str, operation: &str) {
    let Some(name) = binary.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    append(binary, &format!("{name}@assumed"), service, operation);
}

fn append(binary: &Path, name: &str, service: &str, operation: &str) {
    let dir = log_dir(binary);
    let _ = std::fs::create_dir_all(&dir);
    // One write per line: tests in other processes append to the same file at the same time, and
    // an O_APPEND write of a short line is not interleaved with theirs (a `writeln!` may split it).
    let line = format!("{service}:{operation}\n");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
    {
        let _ = file.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_by_protocol() {
        let none = HeaderMap::new();
        let uri = |u: &str| u.parse::<Uri>().unwrap();
        let mut json = HeaderMap::new();
        json.insert("x-amz-target", "SageMaker.DescribeDomain".parse().unwrap());
        assert_eq!(
            operation("sagemaker", &Method::POST, &uri("/"), &json, b"{}"),
            "DescribeDomain"
        );
        assert_eq!(
            operation(
                "sts",
                &Method::POST,
                &uri("/"),
                &none,
                b"Action=AssumeRole&Version=2011-06-15"
            ),
            "AssumeRole"
        );
        assert_eq!(
            operation("s3", &Method::PUT, &uri("/models?policy"), &none, b""),
            "PutBucketPolicy"
        );
        assert_eq!(
            operation(
                "s3",
                &Method::GET,
                &uri("/models/stacksets/endpoint.yaml?versionId=1"),
                &none,
                b""
            ),
            "GetObject"
        );
        assert_eq!(
            operation(
                "elasticfilesystem",
                &Method::DELETE,
                &uri("/2015-02-01/mount-targets/fsmt-1"),
                &none,
                b""
            ),
            "DeleteMountTarget"
        );
        assert!(operation("s3", &Method::POST, &uri("/"), &none, b"").starts_with('?'));
        assert_eq!(
            iam_action("lambda", "Invoke").as_deref(),
            Some("lambda:InvokeFunction")
        );
        assert_eq!(iam_action("sts", "GetCallerIdentity"), None);
    }

    #[test]
    fn endpoints_become_forwards_and_lambda_stays() {
        let config = Config::new("/bin/true".into(), "f")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:2")
            .env("AWS_ENDPOINT_URL_EFS", "http://127.0.0.1:3")
            .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:4")
            .env("POLICY_LOCK_TABLE", "t");
        let routed = route_through_harness(config);
        assert_eq!(
            routed.forward,
            [
                ("sagemaker".to_owned(), "http://127.0.0.1:2".to_owned()),
                (
                    "elasticfilesystem".to_owned(),
                    "http://127.0.0.1:3".to_owned()
                ),
                ("*".to_owned(), "http://127.0.0.1:1".to_owned()),
            ]
        );
        let env: Vec<(&str, &str)> = routed
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(env.contains(&("AWS_ENDPOINT_URL", "{harness}")));
        assert!(env.contains(&("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:4")));
        assert!(env.contains(&("POLICY_LOCK_TABLE", "t")));
    }
}
