//! A real `credd` on private temporary directories, started and stopped per test.
//!
//! Readiness is the daemon's own signal: it prints `credd: ready` on stderr only after both
//! sockets exist with their final modes, and the harness waits for that line (no sleeping).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::bins;

/// Fast hashing for tests; the production default is 600 000.
pub const TEST_CONFIG: &str = "[hashing]\niterations = 1000\n";

/// How long a daemon may take to become ready (a cold debug build on a busy 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestDaemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Reads credd's stderr into `log`; ends at EOF, when credd has exited.
    reader: Option<std::thread::JoinHandle<()>>,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// A state directory elsewhere than under `dir` (a small volume of the test's).
    state: Option<PathBuf>,
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        TestDaemon::start_with(TEST_CONFIG)
    }

    pub fn start_with(config: &str) -> TestDaemon {
        TestDaemon::start_in(config, None)
    }

    /// With the state directory at `state` (created by credd), e.g. on a volume the test fills.
    pub fn start_with_state_dir(config: &str, state: &Path) -> TestDaemon {
        TestDaemon::start_in(config, Some(state.to_path_buf()))
    }

    fn start_in(config: &str, state: Option<PathBuf>) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("credd-test-")
            .tempdir()
            .expect("temporary directory");
        // Searchable by every uid, so that tests running a client as `nobody` reach pam.sock.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod test dir");
        let config_path = dir.path().join("credd.toml");
        std::fs::write(&config_path, config).expect("write config");
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod config");
        let mut daemon = TestDaemon {
            dir,
            child: None,
            reader: None,
            log: Arc::new((Mutex::new(Vec::new()), Condvar::new())),
            state,
        };
        daemon.launch().expect("credd did not become ready");
        daemon
    }

    /// Replaces the config file; it takes effect at the next [`TestDaemon::restart`].
    pub fn set_config(&self, config: &str) {
        std::fs::write(self.config_path(), config).expect("write config");
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("credd.toml")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.root().join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| self.root().join("state"))
    }

    pub fn pam_socket(&self) -> PathBuf {
        self.runtime_dir().join("pam.sock")
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.runtime_dir().join("admin.sock")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bins::credd());
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--runtime-dir")
            .arg(self.runtime_dir())
            .arg("--state-dir")
            .arg(self.state_dir());
        cmd
    }

    /// Starts credd and waits for its readiness line; on failure returns everything it printed.
    fn launch(&mut self) -> Result<(), String> {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bins::credd().display()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        let log = Arc::clone(&self.log);
        self.reader = Some(std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let ready = line.starts_with("credd: ready");
                log.0.lock().unwrap().push(line);
                log.1.notify_all();
                if ready && let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }));
        self.child = Some(child);
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(()) => Ok(()),
            Err(_) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                Err(format!(
                    "credd not ready (exit status {status:?}); log:\n{}",
                    self.log().join("\n")
                ))
            }
        }
    }

    /// Stops credd with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("credd is running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().expect("wait for credd");
        // Every line credd wrote is in the log once the reader has seen EOF.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// Starts credd again on the same directories and database.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.launch()
            .expect("credd did not become ready after restart");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("credd is running").id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Every line credd wrote to stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until credd has logged a line containing `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let (lines, changed) = &*self.log;
        let guard = lines.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |lines| {
                !lines.iter().any(|l| l.contains(needle))
            })
            .unwrap();
        guard.iter().any(|l| l.contains(needle))
    }

    /// Runs credctl against this daemon's admin socket.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_stdin(args, "")
    }

    pub fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(bins::credctl())
            .arg("--socket")
            .arg(self.admin_socket())
            .args(args)
            .env_remove("CREDD_ADMIN_SOCKET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn credctl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .expect("write credctl stdin");
        child.wait_with_output().expect("credctl output")
    }

    /// Adds an account with a password through credctl, asserting that it worked.
    pub fn add_user(&self, name: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        args.extend_from_slice(extra);
        let out = self.ctl_stdin(&args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "credctl user add {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A PAM stack line loading the real module against this daemon, without fail delays.
    pub fn module_line(&self, facility: &str, control: &str, args: &str) -> String {
        self.module_line_for(&bins::pam_module(), facility, control, args)
    }

    pub fn module_line_for(
        &self,
        module: &Path,
        facility: &str,
        control: &str,
        args: &str,
    ) -> String {
        format!(
            "{facility} {control} {} socket={} nodelay {args}",
            module.display(),
            self.pam_socket().display()
        )
    }

    /// A copy of `binary` that any uid can read and run: the build tree may sit in a private
    /// directory (a CI checkout under a 0700 mktemp dir), out of reach of `nobody`.
    pub fn public_copy(&self, binary: &Path) -> PathBuf {
        let name = binary.file_name().expect("binary has a file name");
        let copy = self.root().join(name);
        std::fs::copy(binary, &copy).expect("copy binary into the test directory");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
            .expect("chmod public copy");
        copy
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
