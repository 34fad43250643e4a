//! The `livepose` binary: parses the command line and runs the live app or a command.

use std::process::ExitCode;

use clap::Parser as _;
use livepose::cli::{Cli, Command};

/// Log lines of the commands without a window go to stderr (`RUST_LOG` filters them; default: info).
/// The app logs through Bevy's own log plugin instead.
fn init_command_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if let Err(e) = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init()
    {
        eprintln!("livepose: logging is not set up: {e}");
    }
}

fn report_outcome(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opts out of ONNX Runtime's telemetry before anything loads it (see
/// [`livepose::vision::model::TELEMETRY_OPT_OUT_VAR`]), unless the user set the variable themselves.
#[allow(
    unsafe_code,
    reason = "the environment can only be changed with `set_var`, which is unsafe while other threads may read it"
)]
fn opt_out_of_runtime_telemetry() {
    let var = livepose::vision::model::TELEMETRY_OPT_OUT_VAR;
    if std::env::var_os(var).is_none() {
        // SAFETY: called first thing in `main`, before any thread is started, so no other thread reads
        // or writes the environment at the same time.
        unsafe { std::env::set_var(var, "1") };
    }
}

fn main() -> ExitCode {
    opt_out_of_runtime_telemetry();
    let cli = Cli::parse();
    if cli.command.is_some() {
        init_command_logging();
    }
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
        Some(Command::Export(args)) => report_outcome(livepose::cli::export::run_export(&args)),
        Some(Command::Report(args)) => report_outcome(livepose::cli::export::run_report(&args)),
        #[cfg(feature = "app")]
        None => run_app(&cli.app),
        #[cfg(not(feature = "app"))]
        None => {
            // The window's options are parsed but unused in a build without a window.
            let _ = &cli.app;
            eprintln!(
                "livepose: this build has no window (built without the `app` feature). Use `livepose serve`, \
                 `livepose analyze FILE`, `export` or `report`, or build with the default features."
            );
            ExitCode::from(2)
        }
    }
}

/// The live app (`livepose` with no command), or the camera list.
#[cfg(feature = "app")]
fn run_app(args: &livepose::cli::AppArgs) -> ExitCode {
    if args.list_cameras {
        return match livepose::source::camera::list_cameras() {
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
        };
    }
    if !livepose::app::display_available() {
        eprintln!(
            "livepose: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the window cannot \
             open. Without a screen, use `livepose serve` (the browser client) or `livepose analyze FILE`."
        );
        return ExitCode::from(2);
    }
    match args.settings() {
        Ok(settings) => match livepose::app::run(settings) {
            bevy::app::AppExit::Success => ExitCode::SUCCESS,
            bevy::app::AppExit::Error(code) => ExitCode::from(code.get()),
        },
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
