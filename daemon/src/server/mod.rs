//! Sockets, peer credentials, connection limits and framing. Requests go to `handlers`.
//!
//! One thread per connection, bounded: at most `limits.max_connections` at once (a quarter kept for
//! root peers) and `limits.max_connections_per_uid` per non-root uid. A connection idle for
//! `limits.idle_timeout` is closed, and a connection carries at most [`MAX_REQUESTS_PER_CONNECTION`]
//! requests, so no peer can hold a thread for long.

use std::collections::HashMap;
use std::io::{ErrorKind as IoKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use credd_proto::{
    ErrorKind, ProtoError, Reply, decode_request_full, encode_reply, encode_reply_as, read_frame,
    write_frame,
};

use crate::error::{DaemonError, Result};
use crate::state::Daemon;
use crate::system::peer::{Peer, SocketKind};

/// A PAM hook needs two or three requests; an admin session a handful.
const MAX_REQUESTS_PER_CONNECTION: usize = 64;

/// A socket file created with its final mode before anyone can see it: bound under a temporary
/// name, chmod-ed, then renamed into place. Its appearance is the readiness signal.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    pub kind: SocketKind,
}

/// `group`: the socket's group, set before the rename like its mode (the admin group's members
/// connect through the group bits).
pub fn bind(
    dir: &Path,
    name: &str,
    mode: u32,
    group: Option<u32>,
    kind: SocketKind,
) -> Result<BoundSocket> {
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(|e| DaemonError::io(&temp, e))?;
    if let Some(gid) = group {
        std::os::unix::fs::lchown(&temp, None, Some(gid)).map_err(|e| DaemonError::io(&temp, e))?;
    }
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DaemonError::io(&temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| DaemonError::io(&path, e))?;
    Ok(BoundSocket {
        listener,
        path,
        kind,
    })
}

/// Counts open connections per uid, keeping room for root.
struct ConnectionLimits {
    max_total: usize,
    max_per_uid: usize,
    open: Mutex<(usize, HashMap<u32, usize>)>,
}

struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    uid: u32,
}

impl ConnectionLimits {
    fn admit(self: &Arc<Self>, peer: Peer) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_uid) = &mut *open;
        let uid = peer.budget_uid();
        let mine = per_uid.get(&uid).copied().unwrap_or(0);
        let allowed = if peer.has_root_budget() {
            *total < self.max_total
        } else {
            *total < self.max_total - self.max_total / 4 && mine < self.max_per_uid
        };
        if !allowed {
            return None;
        }
        *total += 1;
        per_uid.insert(uid, mine + 1);
        Some(ConnectionSlot {
            limits: Arc::clone(self),
            uid,
        })
    }

    fn total(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_uid) = &mut *open;
        *total -= 1;
        if let Some(n) = per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                per_uid.remove(&self.uid);
            }
        }
    }
}

/// Connection threads kept for the next connection. A PAM hook opens a connection per request,
/// and starting a thread put tens of microseconds (and a trip through the scheduler) between every
/// login's connect and its reply; a thread that served a connection waits a while for the next one
/// instead. At most [`IdleThreads::KEEP`] wait; the rest end, and so does one idle for
/// [`IdleThreads::LINGER`].
struct IdleThreads {
    idle: Mutex<Vec<(u64, std::sync::mpsc::Sender<Work>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

type Work = Box<dyn FnOnce() + Send + 'static>;

impl IdleThreads {
    const KEEP: usize = 4;
    const LINGER: Duration = Duration::from_secs(30);

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, std::sync::mpsc::Sender<Work>)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on an idle connection thread, or on a new one.
    fn run(self: &Arc<Self>, mut work: Work) -> std::io::Result<()> {
        loop {
            let Some((_, tx)) = self.lock().pop() else {
                break;
            };
            match tx.send(work) {
                Ok(()) => return Ok(()),
                // That thread has just ended; try the next, or start one.
                Err(std::sync::mpsc::SendError(back)) => work = back,
            }
        }
        let me = Arc::clone(self);
        thread::Builder::new()
            .name("conn".into())
            .spawn(move || me.serve(work))
            .map(|_| ())
    }

    fn serve(&self, first: Work) {
        let mut work = first;
        loop {
            work();
            let (tx, rx) = std::sync::mpsc::channel::<Work>();
            let id = self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            {
                let mut idle = self.lock();
                if idle.len() >= Self::KEEP {
                    return;
                }
                idle.push((id, tx));
            }
            work = match rx.recv_timeout(Self::LINGER) {
                Ok(next) => next,
                Err(_) => {
                    // Leave only once no one can hand this thread work any more: out of the idle
                    // list, or, if someone took it from there already, after taking that work.
                    let mut idle = self.lock();
                    if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                        idle.remove(at);
                        return;
                    }
                    drop(idle);
                    match rx.recv() {
                        Ok(next) => next,
                        Err(_) => return,
                    }
                }
            };
        }
    }
}

pub struct Server {
    daemon: Arc<Daemon>,
    limits: Arc<ConnectionLimits>,
    threads: Arc<IdleThreads>,
    stopping: AtomicBool,
    /// Listening sockets to shut down on stop; filled by `run`, under the same lock `stop` takes,
    /// so a signal arriving before `run` starts is not lost.
    listener_fds: Mutex<Vec<i32>>,
}

impl Server {
    pub fn new(daemon: Arc<Daemon>) -> Server {
        let limits = Arc::new(ConnectionLimits {
            max_total: daemon.config.limits.max_connections,
            max_per_uid: daemon.config.limits.max_connections_per_uid,
            open: Mutex::new((0, HashMap::new())),
        });
        Server {
            daemon,
            limits,
            threads: Arc::new(IdleThreads {
                idle: Mutex::new(Vec::new()),
                next_id: std::sync::atomic::AtomicU64::new(0),
            }),
            stopping: AtomicBool::new(false),
            listener_fds: Mutex::new(Vec::new()),
        }
    }

    /// Accepts on every socket until [`Server::stop`] is called from another thread, then waits
    /// up to `grace` for open connections to finish.
    pub fn run(&self, sockets: Vec<BoundSocket>, grace: Duration) {
        {
            let mut fds = self.listener_fds.lock().unwrap_or_else(|p| p.into_inner());
            *fds = sockets.iter().map(|s| s.listener.as_raw_fd()).collect();
            if self.stopping.load(Ordering::SeqCst) {
                shutdown_all(&fds);
            }
        }
        thread::scope(|scope| {
            for socket in &sockets {
                scope.spawn(move || self.accept_loop(socket));
            }
        });
        for socket in &sockets {
            let _ = std::fs::remove_file(&socket.path);
        }
        let deadline = std::time::Instant::now() + grace;
        while self.limits.total() > 0 && std::time::Instant::now() < deadline {
            // Shutdown only: there is no event to wait on for "all detached threads finished".
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wakes the accept loops: on Linux, shutdown(2) on a listening socket makes a blocked
    /// accept(2) return.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        shutdown_all(&self.listener_fds.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn stopper(self: &Arc<Self>) -> impl Fn() + Send + 'static {
        let me = Arc::clone(self);
        move || me.stop()
    }

    fn accept_loop(&self, socket: &BoundSocket) {
        loop {
            let accepted = socket.listener.accept();
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    eprintln!("credd: accept on {}: {e}", socket.path.display());
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            self.spawn_connection(stream, socket.kind);
        }
    }

    fn spawn_connection(&self, stream: UnixStream, kind: SocketKind) {
        let Ok(peer) = Peer::of(&stream, self.daemon.admin_group.as_ref()) else {
            return;
        };
        let idle = self.daemon.config.limits.idle_timeout;
        let _ = stream.set_read_timeout(Some(idle));
        let _ = stream.set_write_timeout(Some(idle));
        let Some(slot) = self.limits.admit(peer) else {
            reply_once(&stream, &Reply::Busy);
            return;
        };
        let daemon = Arc::clone(&self.daemon);
        let spawned = self.threads.run(Box::new(move || {
            let _slot = slot;
            serve_connection(&daemon, stream, peer, kind, idle);
        }));
        if let Err(e) = spawned {
            eprintln!("credd: cannot start a connection thread: {e}");
        }
    }
}

fn shutdown_all(fds: &[i32]) {
    for fd in fds {
        // The fds belong to listeners that `run` keeps open until the accept loops end; an error
        // means the loop is already gone.
        let _ = nix::sys::socket::shutdown(*fd, nix::sys::socket::Shutdown::Both);
    }
}

/// Reads with one deadline for a whole frame. A per-read timeout alone lets a peer trickle one
/// byte per interval and hold a connection thread indefinitely (slow loris).
struct FrameReader<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Read for FrameReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                IoKind::TimedOut,
                "frame deadline passed",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

fn reply_once(mut stream: &UnixStream, reply: &Reply) {
    if let Ok(body) = encode_reply(reply) {
        let _ = write_frame(&mut stream, &body);
    }
}

fn error_reply(kind: ErrorKind, message: String) -> Reply {
    Reply::Error { kind, message }
}

fn serve_connection(
    daemon: &Arc<Daemon>,
    stream: UnixStream,
    peer: Peer,
    kind: SocketKind,
    idle: Duration,
) {
    // The admin socket's mode is the first fence; this is the second, checked before a single
    // request byte is parsed.
    if kind == SocketKind::Admin && !peer.may_administer() {
        daemon.counters.bump(&daemon.counters.refused_peers);
        // Logged and audited once per uid per minute; the counter has every one.
        if daemon
            .rate
            .log_refusal(peer.budget_uid(), crate::system::time::now_unix_ms())
        {
            daemon.record(&crate::audit::chain::Event {
                name: "peer_refused",
                actor_uid: Some(peer.uid),
                outcome: "refused",
                detail: format!("admin.sock connection pid={}", peer.pid),
                ..Default::default()
            });
            eprintln!(
                "credd: refused admin connection from uid {} pid {} (further refusals of this \
                 uid in the next minute are counted, not logged)",
                peer.uid, peer.pid
            );
        }
        reply_once(
            &stream,
            &error_reply(
                ErrorKind::NotPermitted,
                "admin.sock serves root only, and members of [admin] group when one is set".into(),
            ),
        );
        return;
    }
    let mut state = crate::handlers::import::Connection::default();
    // An import sends one frame per few hundred rows: allow it as many as a million-row file needs.
    let mut requests = 0usize;
    loop {
        requests += 1;
        if requests > MAX_REQUESTS_PER_CONNECTION && !state.importing() {
            return;
        }
        let mut reader = FrameReader {
            stream: &stream,
            deadline: Instant::now() + idle,
        };
        let body = match read_frame(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(ProtoError::FrameTooLarge { len, max }) => {
                // The stream is out of step after an unread body: answer, then close.
                reply_once(
                    &stream,
                    &error_reply(
                        ErrorKind::FrameTooLarge,
                        format!("frame of {len} bytes exceeds the {max}-byte limit"),
                    ),
                );
                return;
            }
            Err(_) => return, // truncated, idle timeout or I/O error: nothing to answer.
        };
        let (version, request, request_id) = match decode_request_full(&body) {
            Ok(d) => (d.version, d.request, d.id),
            Err(e) => {
                let kind = match e {
                    ProtoError::VersionMismatch { .. } => ErrorKind::VersionMismatch,
                    _ => ErrorKind::BadRequest,
                };
                reply_once(&stream, &error_reply(kind, e.to_string()));
                return;
            }
        };
        drop(body);
        let mut writer = &stream;
        let mut respond = |reply: &Reply| -> std::result::Result<(), ProtoError> {
            let body = encode_reply_as(version, reply)?;
            write_frame(&mut writer, &body)
        };
        // Request ids become audit event ids: only administrators on admin.sock may choose them
        // (an unprivileged caller could otherwise collide with an existing id).
        let request_id = request_id.filter(|_| kind == SocketKind::Admin && peer.may_administer());
        // An administrative request on pam.sock is no mistake a PAM module makes: answer it, then
        // close the connection, so that a flood of them costs a connect each.
        let close_after = kind == SocketKind::Pam && request.is_admin();
        let mut ctx = crate::handlers::context::Context {
            peer,
            socket: kind,
            live: daemon.current_policy(),
            conn: &mut state,
        };
        let handled = crate::audit::chain::with_request_id(request_id, || {
            daemon.handle(&mut ctx, request, &mut respond)
        });
        if handled.is_err() || close_after {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn threads() -> Arc<IdleThreads> {
        Arc::new(IdleThreads {
            idle: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
        })
    }

    #[test]
    fn one_connection_after_another_reuses_one_thread() {
        let pool = threads();
        let (tx, rx) = mpsc::channel();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..20 {
            let tx = tx.clone();
            pool.run(Box::new(move || tx.send(thread::current().id()).unwrap()))
                .unwrap();
            ids.insert(rx.recv().unwrap());
            // The next connection arrives once this one is served and its thread waits again.
            while pool.lock().is_empty() {
                thread::yield_now();
            }
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(pool.lock().len(), 1);
    }

    #[test]
    fn at_most_keep_threads_wait_and_no_work_is_lost() {
        let pool = threads();
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(std::sync::Barrier::new(IdleThreads::KEEP + 4));
        // More connections at once than threads are kept: each gets a thread of its own.
        for i in 0..IdleThreads::KEEP + 4 {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            pool.run(Box::new(move || {
                gate.wait();
                tx.send(i).unwrap();
            }))
            .unwrap();
        }
        let mut done: Vec<_> = (0..IdleThreads::KEEP + 4)
            .map(|_| rx.recv().unwrap())
            .collect();
        done.sort();
        assert_eq!(done, (0..IdleThreads::KEEP + 4).collect::<Vec<_>>());
        // The extra ones end; KEEP stay for the next connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.lock().len() < IdleThreads::KEEP {
            assert!(Instant::now() < deadline);
            thread::yield_now();
        }
        assert_eq!(pool.lock().len(), IdleThreads::KEEP);
    }
}
