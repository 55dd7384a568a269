//! `vid2mp3`: the command-line client of a vid2mp3 server.
//!
//! Errors are typed inside (`errors::CliError`, per-module thiserror types) and become an
//! exit code and one message here, at the edge.

mod api_client;
mod cli_args;
mod commands;
mod config_store;
mod errors;
mod exit_code;
mod media_type;
mod output;
mod progress;
mod resume;
mod tus;
mod upload_state;

use std::process::ExitCode;

use clap::Parser;

use crate::exit_code::ExitStatus;

fn main() -> ExitCode {
    let cli = match cli_args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors; 2 means "not logged in" here, so map it to 1.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                ExitStatus::Other.code()
            } else {
                ExitStatus::Ok.code()
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(ExitStatus::Other.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(ExitStatus::for_error(&e).code())
        }
    }
}
