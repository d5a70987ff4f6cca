//! `aws-twin --port 0 --moto-endpoint URL`: serves the SageMaker/CodePipeline twin on 127.0.0.1 and
//! prints the address it bound as its first line of output. Runs until stopped.

use std::io::Write;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut port, mut moto) = (0u16, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--moto-endpoint" => moto = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let twin = match testbed::twin::Twin::start(port, moto).await {
        Ok(twin) => twin,
        Err(e) => {
            eprintln!("aws-twin: cannot bind 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", twin.endpoint);
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
}

fn usage() -> ! {
    eprintln!("usage: aws-twin [--port PORT] [--moto-endpoint URL]");
    std::process::exit(2);
}
