//! `realmq-server`: receives RealMQ messages over UDP (or the TCP baseline) and measures
//! their one-way latency. Parses the flags, sets up logging and signals, binds, serves
//! ([`realmq_server::serve`]) and prints the summary. See `docs/USAGE.md`.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use realmq_common::io::{print_report, socket, Protocol, Shutdown};
use realmq_server::cli::Args;
use realmq_server::{serve, Listener, ServeOptions};

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run_server(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if args.common.json {
                // One JSON object on stdout in every case, so scripts can always parse it.
                let error = serde_json::json!({ "error": format!("{e:#}") });
                println!("{error}");
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_server(args: &Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let handler = shutdown.clone();
    ctrlc::set_handler(move || {
        handler.trigger();
    })
    .context("cannot install the Ctrl-C handler")?;
    let common = &args.common;
    let listener = match common.protocol {
        Protocol::Udp => Listener::Udp(
            socket::bind_udp(args.bind, common.socket_buffer)
                .with_context(|| format!("cannot bind UDP {}", args.bind))?,
        ),
        Protocol::Raw => Listener::Raw(
            socket::bind_udp(args.bind, common.socket_buffer)
                .with_context(|| format!("cannot bind UDP {}", args.bind))?,
        ),
        Protocol::Tcp => {
            if common.simulate_loss > 0.0 {
                log::warn!("--simulate-loss applies to UDP only; TCP repairs loss itself");
            }
            Listener::Tcp(
                mio::net::TcpListener::bind(args.bind)
                    .with_context(|| format!("cannot listen on TCP {}", args.bind))?,
            )
        }
    };
    let addr = match &listener {
        Listener::Udp(s) | Listener::Raw(s) => s.local_addr(),
        Listener::Tcp(l) => l.local_addr(),
    }
    .context("cannot read the bound address")?;
    announce(addr, common.protocol, args.port_file.as_deref())?;
    let options = ServeOptions {
        psk: common.psk()?,
        ..args.serve_options()
    };
    let summary = serve(listener, &options, &shutdown)?;
    print_report(&mut std::io::stdout().lock(), &summary, common.json)
        .context("cannot print the summary")
}

/// Tells scripts and tests where the server listens: a log line, and `--port-file`.
fn announce(addr: SocketAddr, protocol: Protocol, port_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = port_file {
        // Write then rename, so a reader never sees a half-written file.
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, format!("{addr}\n"))
            .and_then(|()| fs::rename(&tmp, path))
            .with_context(|| format!("cannot write the port file {}", path.display()))?;
    }
    log::info!("listening on {addr} ({})", protocol.name());
    Ok(())
}
