//! Real system state for the tests of real clients (root only): system users made with
//! `useradd` and removed on drop, `/etc/pam.d` files replaced (or created) for a test and
//! restored byte for byte on drop, clients run with a pipe and a bound, and [`Findings`] that
//! collect every failed check of a test before it fails once.
//!
//! Used by `tests/tests/clients_setuid.rs` (sudo, passwd, su) and `tests/tests/clients_console.rs`
//! (login, chsh, chfn, vlock).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::TestDaemon;

// ---------------------------------------------------------------------------------------------
// System users

/// Free uids are searched from here; each test takes the next one (see `TestUser::create`).
const UID_BASE: u32 = 5400;
static NEXT_UID: AtomicU32 = AtomicU32::new(UID_BASE);

/// A real system user (`useradd`), removed with `userdel` on drop, also when the test panics.
/// No home directory (`/nonexistent`), shell `/bin/sh`, shadow password locked (`!`), so nothing
/// but credd can authenticate it.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
}

impl TestUser {
    /// `ct-TAG-PID` with the next free uid from 5400 on (group `nogroup`).
    pub fn create(tag: &str) -> TestUser {
        let name = format!("ct-{tag}-{}", std::process::id());
        assert!(
            !known_to_nss("passwd", &name),
            "user {name} already exists (left over from a killed run?); userdel it first"
        );
        for _ in 0..200 {
            let uid = NEXT_UID.fetch_add(1, Ordering::SeqCst);
            assert!(uid < UID_BASE + 500, "no free uid in {UID_BASE}..+500");
            let id = uid.to_string();
            if known_to_nss("passwd", &id) || known_to_nss("group", &id) {
                continue;
            }
            let out = retry_locked(|| {
                Command::new("useradd")
                    .args(["-M", "-d", "/nonexistent", "-s", "/bin/sh", "-u", &id])
                    .args(["-g", "nogroup", "-c", "credd e2e test user", &name])
                    .output()
                    .expect("run useradd")
            });
            match out.status.code() {
                Some(0) => return TestUser { name, uid },
                Some(4) => continue, // uid taken in the meantime
                _ => panic!(
                    "useradd {name} -u {uid} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        panic!("no free uid for {name}");
    }

    pub fn uid_arg(&self) -> String {
        self.uid.to_string()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let out = retry_locked(|| Command::new("userdel").arg(&self.name).output().unwrap());
        if !out.status.success() {
            eprintln!(
                "warning: userdel {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// True when `getent DB KEY` finds an entry.
pub fn known_to_nss(db: &str, key: &str) -> bool {
    Command::new("getent")
        .args([db, key])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a shadow tool again while another process holds /etc/passwd's lock (exit 1 or 10 with
/// "cannot lock"): parallel tests and other test binaries add users too.
pub fn retry_locked(mut run: impl FnMut() -> std::process::Output) -> std::process::Output {
    let mut out = run();
    for _ in 0..50 {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "currently used by process": a killed client's process has not been reaped yet.
        let transient = stderr.contains("lock")
            || stderr.contains("try again")
            || stderr.contains("currently used by process");
        if out.status.success() || !transient {
            break;
        }
        // Backing off before a retry, not waiting for an event.
        std::thread::sleep(Duration::from_millis(100));
        out = run();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Replacing a fixed-name /etc/pam.d file

/// Serialises the tests of one process that replace a system PAM file.
static SYSTEM_PAM_FILES: Mutex<()> = Mutex::new(());

/// The first line of every file this module writes into /etc/pam.d.
const MARKER: &str = "# credd-e2e clients_setuid: temporary replacement";

/// `/etc/pam.d/NAME` replaced for a test, restored byte for byte (and with its mode) on drop, or
/// created for a test and removed on drop. Holds this process's mutex and an flock shared by
/// every test process, so no two tests ever replace a system PAM file at once. The original of a
/// replaced file is also kept in /var/tmp, from which the next run restores a file a killed run
/// left replaced (a created file a killed run left behind is removed).
pub struct ReplacedPamFile {
    path: PathBuf,
    /// None: the file did not exist and is removed on drop.
    original: Option<Vec<u8>>,
    mode: u32,
    backup: PathBuf,
    _lock: std::fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl ReplacedPamFile {
    /// `/etc/pam.d/NAME` becomes `prefix` followed by the original file.
    pub fn install(name: &str, prefix: &[String]) -> ReplacedPamFile {
        ReplacedPamFile::install_edited(name, |original| {
            let mut text = String::new();
            for line in prefix {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("# --- the original file follows ---\n");
            text.push_str(original);
            text
        })
    }

    /// `/etc/pam.d/NAME` becomes `edit(original)` (see [`insert_before`] and [`remove_line`]).
    /// The original must be UTF-8 (Debian's are ASCII).
    pub fn install_edited(name: &str, edit: impl FnOnce(&str) -> String) -> ReplacedPamFile {
        let (lock, guard) = lock_system_pam_files();
        let path = Path::new("/etc/pam.d").join(name);
        let backup = backup_path(name);
        let current = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        if is_ours(&current) {
            // A killed run left its replacement; put the original back first.
            let saved = std::fs::read(&backup).unwrap_or_else(|e| {
                panic!("{path:?} is a leftover test replacement and {backup:?} is missing: {e}")
            });
            write_atomically(&path, &saved, 0o644);
            eprintln!("restored {path:?} from {backup:?} (left by a killed run)");
        }
        let original = std::fs::read(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        write_atomically(&backup, &original, 0o600);
        let original_text = String::from_utf8(original.clone())
            .unwrap_or_else(|e| panic!("{path:?} is not UTF-8: {e}"));
        let mut text = format!(
            "{MARKER} (pid {}); original: {backup:?}\n",
            std::process::id()
        );
        text.push_str(&edit(&original_text));
        write_atomically(&path, text.as_bytes(), mode);
        ReplacedPamFile {
            path,
            original: Some(original),
            mode,
            backup,
            _lock: lock,
            _guard: guard,
        }
    }

    /// Creates `/etc/pam.d/NAME` (0644) with `lines` for a service that has no file of its own
    /// (libpam would use `other`); removed on drop. Panics if the file exists, unless it is one a
    /// killed run created (then it is removed first).
    pub fn create(name: &str, lines: &[String]) -> ReplacedPamFile {
        let (lock, guard) = lock_system_pam_files();
        let path = Path::new("/etc/pam.d").join(name);
        let backup = backup_path(name);
        if let Ok(current) = std::fs::read(&path) {
            assert!(
                is_ours(&current) && !backup.exists(),
                "{path:?} exists (and is not a file a killed test run created); \
                 the test will not overwrite it"
            );
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {path:?}: {e}"));
            eprintln!("removed {path:?} (left by a killed run)");
        }
        let mut text = format!(
            "{MARKER} (pid {}); created for the test, removed after it\n",
            std::process::id()
        );
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        write_atomically(&path, text.as_bytes(), 0o644);
        ReplacedPamFile {
            path,
            original: None,
            mode: 0o644,
            backup,
            _lock: lock,
            _guard: guard,
        }
    }

    /// What the file holds now (for failure messages and reports).
    pub fn contents(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

impl Drop for ReplacedPamFile {
    fn drop(&mut self) {
        match &self.original {
            Some(original) => {
                write_atomically(&self.path, original, self.mode);
                match std::fs::read(&self.path) {
                    Ok(now) if &now == original => {
                        let _ = std::fs::remove_file(&self.backup);
                    }
                    _ => eprintln!(
                        "WARNING: {:?} could not be restored; the original is in {:?}",
                        self.path, self.backup
                    ),
                }
            }
            None => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    eprintln!(
                        "WARNING: {:?} (created by the test) could not be removed: {e}",
                        self.path
                    );
                }
            }
        }
    }
}

fn lock_system_pam_files() -> (std::fs::File, std::sync::MutexGuard<'static, ()>) {
    let guard = SYSTEM_PAM_FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/lock/credd-e2e-system-pam.lock")
        .expect("open the system PAM lock file");
    // SAFETY: flock on a descriptor we own; released when the file is closed.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0,
        "flock"
    );
    (lock, guard)
}

fn backup_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/tmp/credd-e2e-pam.d-{name}.orig"))
}

fn is_ours(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes).starts_with(MARKER)
}

/// `text` with `lines` inserted before its first line that reads `anchor` (surrounding blanks
/// ignored). Panics if there is none: a stack edit that silently did nothing would test nothing.
pub fn insert_before(text: &str, anchor: &str, lines: &[String]) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.trim() == anchor {
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
            done = true;
        }
        out.push_str(line);
    }
    assert!(done, "no line {anchor:?} in:\n{text}");
    out
}

/// `text` without its first line that reads `line` once blanks are collapsed (so that
/// `auth optional pam_group.so` matches however the columns are aligned). Panics if there is none.
pub fn remove_line(text: &str, line: &str) -> String {
    let want: Vec<&str> = line.split_whitespace().collect();
    let mut out = String::new();
    let mut done = false;
    for l in text.split_inclusive('\n') {
        if !done && l.split_whitespace().collect::<Vec<_>>() == want {
            done = true;
            continue;
        }
        out.push_str(l);
    }
    assert!(done, "no line {line:?} in:\n{text}");
    out
}

/// Writes through a temporary file in the same directory and a rename, so that a program starting
/// at that moment reads either the old or the new file, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) {
    let dir = path.parent().unwrap();
    let tmp = dir.join(format!(
        ".{}.credd-e2e.{}",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {tmp:?}: {e}"));
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename {tmp:?} to {path:?}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// What to print on failure

/// credd's log and the account's audit trail, for failure messages.
pub fn context(d: &TestDaemon, user: &str) -> String {
    let audit = d.ctl(&["audit", "--user", user]);
    format!(
        "--- credd log ---\n{}\n--- credctl audit --user {user} ---\n{}{}",
        d.log().join("\n"),
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    )
}

/// Collects failed checks so that one run reports everything that is wrong, then fails once.
#[derive(Default)]
pub struct Findings(pub Vec<String>);

impl Findings {
    /// Records `what()` as a failure unless `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if !ok {
            let what = what();
            eprintln!("FAILED CHECK: {what}");
            self.0.push(what);
        }
        ok
    }

    /// Panics with every failed check, credd's log and `user`'s audit trail, if any failed.
    pub fn finish(self, d: &TestDaemon, user: &str) {
        if !self.0.is_empty() {
            panic!(
                "{} check(s) failed:\n\n{}\n\n{}",
                self.0.len(),
                self.0.join("\n\n"),
                context(d, user)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a client with a pipe, bounded

/// What [`run_piped`] saw: the exit status (None: killed at the timeout) and both outputs.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn text(&self) -> String {
        format!(
            "status {:?}\n[stdout]\n{}\n[stderr]\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` in a new session without a controlling terminal, with `stdin` written and closed;
/// killed (status None) after `timeout`.
pub fn run_piped(mut cmd: Command, stdin: &str, timeout: Duration) -> Ran {
    // No controlling terminal, as in a script run from cron or CI: sudo cannot use /dev/tty.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    // A client that exits early closes the pipe; that is its answer, not an error here.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for client") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                // SAFETY: our own child leads its process group (setsid above); sudo under
                // runuser is in it too.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Polling for the exit of our own child, bounded by the deadline.
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Ran {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    }
}
