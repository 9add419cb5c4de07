//! A service file in `/etc/pam.d` for tools that only read the system directory (pamtester, and
//! anything run as another user through `runuser`). Root only; the file is removed on drop.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub struct SystemService {
    pub name: String,
    path: PathBuf,
}

impl SystemService {
    /// Writes `/etc/pam.d/<unique name>` with `lines`. The name is unique per process and call,
    /// so parallel tests never share a file.
    pub fn install(lines: &[String]) -> SystemService {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "credd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        SystemService::install_named(&name, lines)
    }

    /// A service file with a given name: sshd uses its program name as the service, so a copy of
    /// sshd under this name reads this file.
    pub fn install_named(name: &str, lines: &[String]) -> SystemService {
        let name = name.to_string();
        let path = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write /etc/pam.d service");
        SystemService { name, path }
    }

    /// Runs `pamtester SERVICE USER OPERATION...`, optionally as another user via runuser,
    /// feeding `answers` on stdin (one per line).
    pub fn pamtester(
        &self,
        as_user: Option<&str>,
        user: &str,
        ops: &[&str],
        answers: &str,
    ) -> Output {
        let mut cmd = match as_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--", "pamtester"]);
                c
            }
            None => Command::new("pamtester"),
        };
        cmd.arg("-v").arg(&self.name).arg(user).args(ops);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pamtester (apt-get install pamtester)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answers.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for SystemService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Everything pamtester printed: it reports success on stdout and failure on stderr.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
