//! credd: the privileged credential daemon. docs/architecture.md has the map.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use credd::startup::{self, Options};
use credd_proto::paths;

#[derive(Parser, Debug)]
#[command(
    name = "credd",
    version,
    about = "credd: the credential daemon behind pam_credd.so"
)]
struct Args {
    /// Configuration file; a missing file means the defaults.
    #[arg(long, value_name = "FILE", default_value = paths::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Directory for pam.sock and admin.sock.
    #[arg(long, value_name = "DIR", default_value = paths::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Directory for the database and the lock file.
    #[arg(long, value_name = "DIR", default_value = paths::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Validate the configuration, print the result and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = Options {
        config: args.config,
        runtime_dir: args.runtime_dir,
        state_dir: args.state_dir,
        check_config: args.check_config,
    };
    match startup::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credd: {e}");
            ExitCode::FAILURE
        }
    }
}
