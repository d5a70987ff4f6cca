//! The sandbox: keeps one function process running, restarts it after a crash or a timeout kill, and reads its logs.

use super::*;

/// Keeps one function process running; restarts it after a crash or a timeout kill.
pub(super) async fn supervise(shared: Arc<Shared>, mut kill: mpsc::UnboundedReceiver<()>) {
    let config = shared.config.clone();
    let runtime_api = shared.base_url.trim_start_matches("http://").to_owned();
    loop {
        let mut cmd = tokio::process::Command::new(&config.binary);
        cmd.args(&config.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function_name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_LAMBDA", &shared.base_url)
            // Lambda's X-Ray daemon (with `Tracing: Active`): the harness listens there.
            .env("AWS_XRAY_DAEMON_ADDRESS", &shared.xray_daemon)
            // Our ResponseURL receiver is on 127.0.0.1: a setting for local tests only (the template
            // never sets it). A test overrides it with "" to see the refusal real functions give.
            .env(shared::cfn::origin::LOOPBACK_SETTING, "true")
            .envs(
                config
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.replace("{harness}", &shared.base_url))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        shared.inner.lock().expect("harness state").spawned_at = Some(Instant::now());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                shared.log(format!(
                    "harness: cannot start {}: {e}",
                    config.binary.display()
                ));
                return;
            }
        };
        shared.inner.lock().expect("harness state").pid = child.id();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("HARNESS_ECHO").is_some() {
                        eprintln!("[{}] {line}", shared.config.function_name);
                    }
                    shared.log(line);
                }
            });
        }
        tokio::select! {
            _ = child.wait() => {}
            _ = kill.recv() => {
                let _ = child.kill().await;
            }
        }
        // Whatever was running in this process has crashed (a timeout was already recorded).
        let running: Vec<String> = shared
            .inner
            .lock()
            .expect("harness state")
            .in_flight
            .keys()
            .cloned()
            .collect();
        for id in running {
            finish(&shared, &id, Invoked::Crash);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
