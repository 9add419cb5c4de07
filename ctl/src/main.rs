//! `credctl`: the credd administrator's tool. It talks only to credd's admin socket and never
//! opens the database itself.

use std::io::Write;
use std::process::ExitCode;

use credctl::{cli, commands, output};

fn main() -> ExitCode {
    // Usage errors, `--help` and `--version` are handled by clap (usage errors exit 2).
    let cli = cli::Cli::invocation();
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`credctl user list | head`): nothing left to tell anyone.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the daemon's message holds.
            let message = e.to_string();
            let _ = writeln!(std::io::stderr(), "credctl: {}", output::one_line(&message));
            ExitCode::from(e.exit_code())
        }
    }
}
