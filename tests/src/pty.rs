//! Drives an interactive program on a pseudo-terminal, the way a user at a terminal would: wait
//! for a prompt (bounded), answer it, wait for the next one. For clients that insist on a terminal
//! or behave differently on one (`passwd`, `su`).
//!
//! Built on libc's `openpty` (already a dependency; no extra crate). The child gets the slave side
//! as its standard input, output and error and as its controlling terminal (`setsid` +
//! `TIOCSCTTY`); a thread copies everything it writes from the master side into a transcript.
//!
//! Password prompts turn the terminal's echo off, and pam_misc's `misc_conv` does so with
//! `TCSAFLUSH` *after* printing the prompt, which discards input that arrived in between. So an
//! answer to a hidden prompt is written only once the terminal's `ECHO` flag is off
//! ([`PtySession::send_secret`]); no fixed sleeps anywhere.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the child wrote so far (with markers for what was sent), and whether the terminal closed.
#[derive(Default)]
struct Shared {
    bytes: Vec<u8>,
    closed: bool,
}

pub struct PtySession {
    master: File,
    child: Child,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Everything before this offset has been matched by an earlier `expect`.
    pos: usize,
    status: Option<ExitStatus>,
}

fn cvt(rc: libc::c_int, what: &str) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        Err(std::io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

impl PtySession {
    /// Starts `cmd` on a new pseudo-terminal (80x24) as its controlling terminal.
    pub fn spawn(mut cmd: Command) -> std::io::Result<PtySession> {
        let mut master_fd: libc::c_int = -1;
        let mut slave_fd: libc::c_int = -1;
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the given integers; no name buffer, default
        // termios, a valid winsize.
        cvt(
            unsafe {
                libc::openpty(
                    &mut master_fd,
                    &mut slave_fd,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    &size,
                )
            },
            "openpty",
        )?;
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        let master = unsafe { OwnedFd::from_raw_fd(master_fd) };
        let slave = unsafe { OwnedFd::from_raw_fd(slave_fd) };
        // The master must not leak into the child (it would keep the terminal open).
        cvt(
            unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) },
            "fcntl",
        )?;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // `cmd` still holds the parent's copies of the slave; drop them so that the master reads
        // EOF (EIO) once the child and its descendants have closed the terminal.
        drop(cmd);

        let master = File::from(master);
        let mut reading = master.try_clone()?;
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let sink = Arc::clone(&shared);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reading.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO: every slave descriptor is closed
                    Ok(n) => {
                        sink.0.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
                        sink.1.notify_all();
                    }
                }
            }
            sink.0.lock().unwrap().closed = true;
            sink.1.notify_all();
        });
        Ok(PtySession {
            master,
            child,
            shared,
            reader: Some(reader),
            pos: 0,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the output after the previous match contains `needle` and returns that output
    /// up to and including it. Err (with the whole transcript) on timeout or when the terminal
    /// closes first.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let (lock, changed) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(i) = find(&guard.bytes[self.pos..], needle.as_bytes()) {
                let end = self.pos + i + needle.len();
                let text = String::from_utf8_lossy(&guard.bytes[self.pos..end]).into_owned();
                self.pos = end;
                return Ok(text);
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                let why = if guard.closed {
                    "the terminal closed"
                } else {
                    "timed out"
                };
                let all = String::from_utf8_lossy(&guard.bytes).into_owned();
                return Err(format!(
                    "waiting for {needle:?}: {why} after {timeout:?}; transcript:\n{all}"
                ));
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Like [`PtySession::expect`] for the first of several needles; returns its index and the
    /// output up to and including it.
    pub fn expect_any(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, String), String> {
        let (lock, changed) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut guard = lock.lock().unwrap();
        loop {
            let first = needles
                .iter()
                .enumerate()
                .filter_map(|(k, n)| find(&guard.bytes[self.pos..], n.as_bytes()).map(|i| (i, k)))
                .min();
            if let Some((i, k)) = first {
                let end = self.pos + i + needles[k].len();
                let text = String::from_utf8_lossy(&guard.bytes[self.pos..end]).into_owned();
                self.pos = end;
                return Ok((k, text));
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                let all = String::from_utf8_lossy(&guard.bytes).into_owned();
                return Err(format!(
                    "waiting for one of {needles:?}: {} after {timeout:?}; transcript:\n{all}",
                    if guard.closed {
                        "the terminal closed"
                    } else {
                        "timed out"
                    }
                ));
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Types `line` and Enter at a prompt whose input is hidden: waits (bounded) until the
    /// program has turned the terminal's echo off, so that its flush cannot discard the answer.
    pub fn send_secret(&mut self, line: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: a zeroed termios is a valid out-parameter; the master reports the slave's
            // settings (a pty pair shares one termios).
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            if unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) } < 0 {
                return Err(format!(
                    "tcgetattr: {}; transcript:\n{}",
                    std::io::Error::last_os_error(),
                    self.transcript()
                ));
            }
            if t.c_lflag & libc::ECHO == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the terminal's echo was still on 10 s after the prompt; transcript:\n{}",
                    self.transcript()
                ));
            }
            // Polling a flag another process flips; nothing here waits for a fixed time.
            std::thread::sleep(Duration::from_millis(2));
        }
        self.write_marked(line)
    }

    /// Types `line` and Enter without waiting for anything.
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        self.write_marked(line)
    }

    fn write_marked(&mut self, line: &str) -> Result<(), String> {
        {
            // A marker in the transcript (after everything read so far, before `pos` moves past
            // it) so that a failure shows where each answer went.
            let mut guard = self.shared.0.lock().unwrap();
            let marker = format!("\u{27e8}typed {line:?}\u{27e9}");
            if self.pos == guard.bytes.len() {
                self.pos += marker.len();
            }
            guard.bytes.extend_from_slice(marker.as_bytes());
        }
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("write to the terminal: {e}"))
    }

    /// Waits (bounded) for the child to exit, then for the terminal to close. Kills it on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    // Polling for the exit of a process we started; bounded by the deadline.
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    self.kill_group();
                    return Err(format!(
                        "pid {} did not exit within {timeout:?} (killed); transcript:\n{}",
                        self.child.id(),
                        self.transcript()
                    ));
                }
                Err(e) => return Err(format!("wait: {e}")),
            }
        }
        // Let the reader drain what is left (bounded: a descendant may keep the terminal open).
        let (lock, changed) = &*self.shared;
        let guard = lock.lock().unwrap();
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
        let _ = changed
            .wait_timeout_while(guard, left, |s| !s.closed)
            .unwrap();
        Ok(self.status.unwrap())
    }

    /// Kills the child's whole process group (it leads its own session, so a setuid program it
    /// started, e.g. passwd under runuser, is in it too) and reaps the child.
    fn kill_group(&mut self) {
        // SAFETY: signals the process group of our own child, whose id is its pid (setsid).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the program wrote so far, with markers for what was typed.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.shared.0.lock().unwrap().bytes).into_owned()
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            self.kill_group();
        }
        // The reader ends when the last slave descriptor closes; a descendant that keeps it open
        // must not hang the test, so the thread is left alone then.
        if self.shared.0.lock().unwrap().closed
            && let Some(reader) = self.reader.take()
        {
            let _ = reader.join();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
