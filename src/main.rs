//! The `livepose` binary: parses the command line and runs the live app or a command.

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
        Some(Command::Serve(args)) => match livepose::cli::serve::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        None if cli.app.list_cameras => match livepose::source::camera::list_cameras() {
            Ok(cameras) if cameras.is_empty() => {
                println!("no cameras found");
                ExitCode::SUCCESS
            }
            Ok(cameras) => {
                for camera in cameras {
                    println!("{}\t{}", camera.index, camera.name);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot list cameras: {e}");
                ExitCode::FAILURE
            }
        },
        None => match cli.app.settings() {
            Ok(settings) => match livepose::app::run(settings) {
                bevy::app::AppExit::Success => ExitCode::SUCCESS,
                bevy::app::AppExit::Error(code) => ExitCode::from(code.get()),
            },
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}
