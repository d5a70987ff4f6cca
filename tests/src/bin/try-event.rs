//! `try-event <function> <event.json>`: one sample event through one function, locally. Starts moto
//! and the twin, deploys the project's stack into them, starts the function from the template (see
//! `testbed::sample` for how each kind of event is delivered), prints the function's answer, its
//! metric documents, its logs and the X-Ray subsegments of its AWS calls. Exit status 0 when the function answered without failing.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [function, path] = args.as_slice() else {
        eprintln!(
            "usage: try-event <function> <event.json>\n  e.g. try-event org-accounts events/org-accounts/create.json"
        );
        return std::process::ExitCode::from(2);
    };
    let started = std::time::Instant::now();
    match testbed::sample::run(function, &PathBuf::from(path)).await {
        Ok(tried) => {
            println!("--- logs of {function}");
            for line in &tried.logs {
                println!("{line}");
            }
            println!("--- X-Ray subsegments ({})", tried.segments.len());
            for segment in &tried.segments {
                println!("{segment}");
            }
            println!("--- answer ({:.1} s)", started.elapsed().as_secs_f64());
            println!(
                "{}",
                serde_json::to_string_pretty(&tried.answer).unwrap_or_default()
            );
            if tried.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("try-event: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
