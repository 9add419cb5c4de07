//! The daemon's background work besides serving: the maintenance loop and the signal thread
//! (reload on SIGHUP, stop on SIGTERM and SIGINT).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::chain::Event;
use crate::config::Config;
use crate::error::{DaemonError, Result};
use crate::state::Daemon;
use crate::system::{notify, procinfo, time as timefmt};

/// SIGHUP: reads the config file again and applies it from the next request on. A file that does
/// not load (syntax, a value out of range, a blocklist that cannot be read, a config others can
/// write) changes nothing: credd goes on with what it has and says why (returned, for the
/// reload status the unit's `ExecReload=` reads).
pub fn reload(daemon: &Daemon, path: &Path) -> Option<String> {
    let loaded = Config::load(path).and_then(|config| daemon.reload(config));
    match loaded {
        Ok(needs_restart) => {
            let pending = if needs_restart.is_empty() {
                String::new()
            } else {
                format!(" needs_restart={}", needs_restart.join(","))
            };
            eprintln!(
                "credd: configuration reloaded from {}{pending}",
                path.display()
            );
            daemon.record(&Event {
                name: "config_reloaded",
                outcome: "ok",
                detail: format!("path={}{pending}", path.display()),
                ..Default::default()
            });
            None
        }
        Err(e) => {
            eprintln!("credd: configuration not reloaded, the running one stays: {e}");
            daemon.record(&Event {
                name: "config_reloaded",
                outcome: "refused",
                detail: format!("path={} error={e}", path.display()),
                ..Default::default()
            });
            Some(e.to_string())
        }
    }
}

/// How often the maintenance task runs: expired reset codes are deleted (each with a
/// `code_expired` audit row; an expired code is refused from the moment it expires, the purge only
/// tidies and records), syslog drops are audited once delivery works again, and the audit chain
/// head is checkpointed to syslog every `[audit] checkpoint_interval`.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

pub fn spawn_maintenance(daemon: Arc<Daemon>) {
    let spawned = std::thread::Builder::new()
        .name("maintenance".into())
        .spawn(move || {
            let mut last_checkpoint = std::time::Instant::now();
            loop {
                if let Err(e) = daemon.store().purge_expired_codes(timefmt::now_unix()) {
                    eprintln!("credd: purging expired codes failed: {e}");
                }
                if let Err(e) = daemon
                    .store()
                    .prune_sessions(&procinfo::alive, timefmt::now_unix())
                {
                    eprintln!("credd: pruning ended sessions failed: {e}");
                }
                let dropped = daemon.sink.take_unreported_drops_if_delivering();
                if dropped > 0 {
                    daemon.record(&Event {
                        name: "syslog_dropped",
                        outcome: "dropped",
                        detail: format!("{dropped} events could not be queued for syslog"),
                        ..Default::default()
                    });
                }
                if last_checkpoint.elapsed()
                    >= daemon.current_policy().config.audit.checkpoint_interval
                {
                    daemon.checkpoint("periodic");
                    last_checkpoint = std::time::Instant::now();
                }
                std::thread::sleep(MAINTENANCE_INTERVAL);
            }
        });
    if let Err(e) = spawned {
        eprintln!("credd: cannot start the maintenance task: {e}");
    }
}

/// The thread that turns signals into actions: SIGHUP reloads the configuration (and tells the
/// service manager how it went), SIGTERM and SIGINT stop the server.
pub fn spawn_signal_thread(
    daemon: Arc<Daemon>,
    stop: impl FnOnce() + Send + 'static,
    opts: &super::Options,
) -> Result<std::thread::JoinHandle<()>> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| DaemonError::Startup(format!("cannot install signal handlers: {e}")))?;
    let reloading = daemon;
    let config_path = opts.config.clone();
    let runtime_dir = opts.runtime_dir.clone();
    Ok(std::thread::spawn(move || {
        let mut reloads = 0u64;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                reloads += 1;
                notify::reloading();
                let refused = reload(&reloading, &config_path);
                notify::reloaded(match refused {
                    None => "serving; configuration reloaded",
                    Some(_) => {
                        "serving; the last reload was refused, the running configuration stays"
                    }
                });
                notify::write_reload_status(&runtime_dir, reloads, refused.as_deref());
                continue;
            }
            notify::stopping();
            eprintln!("credd: received signal {sig}, shutting down");
            stop();
            break;
        }
    }))
}
