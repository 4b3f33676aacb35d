//! `realmq-client`: sends RealMQ messages (or the TCP baseline) from N threads and reports
//! throughput, round-trip times and delivery. Parses the flags, sets up logging and signals,
//! runs the sender threads ([`realmq_client::run_workers`]) and prints the summary. See
//! `docs/USAGE.md`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use realmq_client::cli::Args;
use realmq_client::{max_payload, run_workers, ClientSummary, WorkerConfig};
use realmq_common::io::{print_report, Protocol, Shutdown};

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let max = max_payload(args.common.psk_file.is_some());
    if args.common.protocol == Protocol::Udp && args.size as usize > max {
        let message = format!(
            "--size {} does not fit in one UDP datagram: at most {max} bytes",
            args.size
        );
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    match send_and_report(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn send_and_report(args: &Args) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::new();
    let handler = shutdown.clone();
    // The first Ctrl-C/SIGTERM stops sending and waits for what is in flight; a second
    // one exits at once (ctrlc runs this on its own thread, so printing is safe).
    ctrlc::set_handler(move || {
        if handler.trigger() > 1 {
            eprintln!("error: interrupted twice: exiting without waiting for acknowledgements");
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    log::info!("{}", args.describe());
    let psk = args.common.psk()?;
    let workers = args.workers().into_iter().map(|w| WorkerConfig {
        psk: psk.clone(),
        ..w
    });
    let mut ok = Vec::new();
    for (index, result) in run_workers(args.common.protocol, workers.collect(), &shutdown)? {
        match result {
            Ok(r) => ok.push(r),
            Err(e) => {
                log::debug!("thread {index}: {e:#}");
                return Err(e);
            }
        }
    }
    let summary = ClientSummary::new(args.run_info(), &ok);
    print_report(&mut std::io::stdout().lock(), &summary, args.common.json)
        .context("cannot print the summary")?;
    let missing_bye = ok.iter().filter(|r| r.server_received.is_none()).count();
    if missing_bye > 0 && !summary.unreachable {
        log::warn!("{missing_bye} session(s) ended without the server's final count (BYE)");
    }
    if summary.protocol_violation {
        eprintln!("error: the server acknowledged messages never sent: session closed");
        return Ok(ExitCode::from(1));
    }
    if summary.unreachable {
        eprintln!("error: the server became unreachable during the run");
        return Ok(ExitCode::from(1));
    }
    if summary.undeliverable > 0 {
        eprintln!(
            "error: {} of {} messages were undeliverable",
            summary.undeliverable, summary.sent
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
