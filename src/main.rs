//! The `livepose` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser as _;
use livepose::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Analyze(args)) => match livepose::cli::analyze::run(&args) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(failed) => {
                eprintln!("{failed} input(s) failed");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        None => {
            eprintln!("livepose: the live app is not built yet; use `livepose analyze --help`");
            ExitCode::from(2)
        }
    }
}
