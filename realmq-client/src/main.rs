//! `realmq-client`: sends RealMQ messages (or the TCP baseline) from N threads and reports
//! throughput, delivery and round-trip times. Parses the flags, sets up logging and signals,
//! runs the sender threads ([`realmq_client::run_workers_reporting`]) and prints the summary.
//! See `docs/USAGE.md`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use realmq_client::cli::{Args, Command};
use realmq_client::verdict::judge;
use realmq_client::{run_workers_reporting, ClientSummary, Progress, WorkerConfig};
use realmq_common::io::{print_report, CpuTime, Shutdown};

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let args = Args::parse_checked();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Some(Command::PhiSweep(sweep)) = &args.command {
        return realmq_client::phi_sweep::run_to_exit(sweep);
    }
    let progress = Progress::for_threads(args.threads as usize);
    let cpu_start = CpuTime::of_process();
    let mut summary = send(&args, &progress).unwrap_or_else(|e| {
        // What the threads published before the failure is still true.
        let so_far = Progress::total(&progress);
        ClientSummary::failed(args.run_info(), format!("{e:#}"), so_far)
    });
    summary.cpu = CpuTime::summary_since(cpu_start, CpuTime::of_process, summary.sent);
    if let Err(e) = print_report(&mut std::io::stdout().lock(), &summary, args.common.json) {
        eprintln!("error: cannot print the summary: {e}");
        return ExitCode::from(1);
    }
    match &summary.error {
        Some(e) => {
            // The text summary already ends with the error; say it on stderr too.
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// Runs the sender threads; the first Ctrl-C/SIGTERM stops sending and waits for what is in
/// flight, a second one prints what is known so far and exits at once (status 130).
fn send(args: &Args, progress: &Arc<Vec<Progress>>) -> anyhow::Result<ClientSummary> {
    let shutdown = Shutdown::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let (shutdown, interrupted, progress) = (
            shutdown.clone(),
            Arc::clone(&interrupted),
            Arc::clone(progress),
        );
        let json = args.common.json;
        ctrlc::set_handler(move || {
            interrupted.store(true, Ordering::Relaxed);
            if shutdown.trigger() > 1 {
                second_interrupt(&progress, json);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    log::info!("{}", args.describe());
    let psk = args.common.psk()?;
    let workers = args.workers().into_iter().map(|w| WorkerConfig {
        psk: psk.clone(),
        ..w
    });
    let outcome = run_workers_reporting(
        args.common.protocol,
        workers.collect(),
        &shutdown,
        progress,
        args.reporting(),
    )?;
    Ok(judge(
        args.run_info(),
        outcome,
        interrupted.load(Ordering::Relaxed),
    ))
}

/// Prints the live counters (one JSON object with `--json`) and exits with status 130.
fn second_interrupt(progress: &[Progress], json: bool) -> ! {
    let (sent, acked) = Progress::total(progress);
    let error = "interrupted twice: exiting without waiting for acknowledgements";
    if json {
        println!(
            r#"{{"interrupted":true,"error":"{error}","sent":{sent},"acked_so_far":{acked}}}"#
        );
    } else {
        println!("interrupted: sent {sent}, acknowledged so far {acked} (incomplete)");
    }
    eprintln!("error: {error}");
    std::process::exit(130);
}
