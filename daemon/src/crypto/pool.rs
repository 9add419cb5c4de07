//! The bounded hashing pool, shared fairly between sources.
//!
//! PBKDF2 at 600 000 iterations costs tens of milliseconds of CPU; no source may make the daemon
//! queue that work without limit, nor crowd out everybody else's logins (R7: 100 concurrent sshd
//! guesses at unknown names used to leave 0 of 8 real logins, the console's included, with
//! `Busy`). Every job runs for a [`Lane`]: the console and other local services of root, one lane
//! per remote address, one per local uid. Admission:
//!
//! - at most `capacity` jobs queued or running in all; the last quarter only for [`Lane::Service`]
//!   (console logins, credctl), so that no network or local user flood can take the console's
//!   share;
//! - remote lanes together, and user lanes together, at most half of `capacity` each;
//! - one lane at most an eighth of `capacity` (at least one job).
//!
//! Waiting jobs run local first, then one job per lane in turn, so a lane with a hundred waiting
//! jobs delays another lane's one job by at most one job per worker. Past a bound the caller gets
//! [`Busy`] at once. Cheap requests never enter the pool.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool is full for this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Whose work a job is: [`Source::Service`] is the console's and root's other local services'
/// lane, one lane per remote address, one per local uid.
pub use crate::policy::source::Source as Lane;

impl Lane {
    fn class(&self) -> Class {
        match self {
            Lane::Service => Class::Local,
            Lane::Remote(_) => Class::Remote,
            Lane::Local(_) => Class::User,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Local,
    Remote,
    User,
}

/// Admission counts and waiting jobs, under one lock.
#[derive(Default)]
struct State {
    total: usize,
    remote: usize,
    users: usize,
    per_lane: HashMap<Lane, usize>,
    local_jobs: VecDeque<Job>,
    lane_jobs: HashMap<Lane, VecDeque<Job>>,
    /// Lanes with waiting jobs, in the order they are served next.
    rotation: VecDeque<Lane>,
    closed: bool,
}

impl State {
    fn class_count(&mut self, class: Class) -> Option<&mut usize> {
        match class {
            Class::Local => None,
            Class::Remote => Some(&mut self.remote),
            Class::User => Some(&mut self.users),
        }
    }

    fn release(&mut self, lane: &Lane) {
        self.total -= 1;
        if let Some(n) = self.class_count(lane.class()) {
            *n -= 1;
        }
        if let Some(n) = self.per_lane.get_mut(lane) {
            *n -= 1;
            if *n == 0 {
                self.per_lane.remove(lane);
            }
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.local_jobs.len() + self.lane_jobs.values().map(VecDeque::len).sum::<usize>()
    }
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job: local first, then the lanes in turn; `None` once closed and drained.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.local_jobs.pop_front() {
                return Some(job);
            }
            while let Some(lane) = state.rotation.pop_front() {
                let Some(queue) = state.lane_jobs.get_mut(&lane) else {
                    continue;
                };
                let job = queue.pop_front();
                if queue.is_empty() {
                    state.lane_jobs.remove(&lane);
                } else {
                    state.rotation.push_back(lane);
                }
                if let Some(job) = job {
                    return Some(job);
                }
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub struct HashPool {
    shared: Arc<Shared>,
    capacity: usize,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// Gives the admission back however the job ends (even by panic).
struct Slot {
    shared: Arc<Shared>,
    lane: Lane,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lock().release(&self.lane);
    }
}

impl HashPool {
    pub fn new(threads: usize, capacity: usize) -> HashPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        });
        let workers = (0..threads.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("hash-{i}"))
                    .spawn(move || {
                        lower_priority();
                        while let Some(job) = shared.next_job() {
                            // A panicking job must not take a worker with it; its caller sees
                            // the dropped result channel as Busy.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    })
                    .expect("spawning a hashing thread at startup")
            })
            .collect();
        HashPool {
            shared,
            capacity: capacity.max(1),
            workers: Mutex::new(workers),
        }
    }

    /// Whether `lane` may add a job now; counts it when it may.
    fn admit(&self, state: &mut State, lane: &Lane) -> bool {
        let c = self.capacity;
        let class = lane.class();
        let total_limit = if class == Class::Local { c } else { c - c / 4 };
        let lane_limit = (c / 8).max(1);
        let class_limit = (c / 2).max(1);
        let in_lane = state.per_lane.get(lane).copied().unwrap_or(0);
        let class_ok = match state.class_count(class) {
            None => true,
            Some(n) => *n < class_limit,
        };
        let lane_ok = class == Class::Local || in_lane < lane_limit;
        if state.total >= total_limit || !class_ok || !lane_ok {
            return false;
        }
        state.total += 1;
        if let Some(n) = state.class_count(class) {
            *n += 1;
        }
        *state.per_lane.entry(lane.clone()).or_insert(0) += 1;
        true
    }

    /// Runs `work` on the pool for `lane` and waits for its result, or answers [`Busy`]
    /// immediately.
    pub fn run<T, F>(&self, lane: &Lane, work: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut state = self.shared.lock();
            if state.closed || !self.admit(&mut state, lane) {
                return Err(Busy);
            }
            let slot = Slot {
                shared: Arc::clone(&self.shared),
                lane: lane.clone(),
            };
            let job: Job = Box::new(move || {
                let result = work();
                // Free the slot before the caller wakes up, so that a caller who sees its result
                // also sees the capacity it held returned. A panic in `work` drops it while
                // unwinding.
                drop(slot);
                let _ = tx.send(result);
            });
            if *lane == Lane::Service {
                state.local_jobs.push_back(job);
            } else {
                if !state.lane_jobs.contains_key(lane) {
                    state.rotation.push_back(lane.clone());
                }
                state
                    .lane_jobs
                    .entry(lane.clone())
                    .or_default()
                    .push_back(job);
            }
        }
        self.shared.ready.notify_one();
        rx.recv().map_err(|_| Busy)
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.shared.lock().total
    }

    /// Lets queued jobs finish, then stops the threads.
    pub fn shutdown(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        if let Ok(mut workers) = self.workers.lock() {
            for w in workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}

/// Hashing (and the audit writer's batches) are throughput work; a locked account's refusal, an
/// account check or a ping is latency work. A nice of 10 on the hashing threads (Linux applies it to the calling thread alone) lets
/// the scheduler run a connection thread as soon as it wakes, even while every core hashes; an
/// idle machine still gives the hashing threads all of its time.
pub fn lower_priority() {
    // SAFETY: getpriority and setpriority on the calling thread; a failure leaves its priority.
    // Relative to the daemon's own nice, which an administrator may have set.
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (current + HASH_NICE).min(19));
    }
}

const HASH_NICE: libc::c_int = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn remote(h: &str) -> Lane {
        Lane::Remote(h.to_owned())
    }

    #[test]
    fn runs_jobs_and_returns_results() {
        let pool = HashPool::new(2, 8);
        assert_eq!(pool.run(&Lane::Local(1000), || 6 * 7), Ok(42));
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn hashing_threads_run_at_a_lower_priority() {
        let pool = HashPool::new(1, 4);
        // SAFETY: getpriority of the calling thread.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let theirs = pool
            // SAFETY: getpriority of the calling (hashing) thread.
            .run(&Lane::Service, || unsafe {
                libc::getpriority(libc::PRIO_PROCESS, 0)
            })
            .unwrap();
        assert_eq!(theirs, (ours + HASH_NICE).min(19));
    }

    /// Holds `n` jobs of `lane` running until the returned closure is called.
    fn hold(pool: &Arc<HashPool>, lane: Lane, n: usize) -> impl FnOnce() {
        let release = Arc::new(Barrier::new(n + 1));
        let started = Arc::new(Barrier::new(n + 1));
        let mut blockers = Vec::new();
        for _ in 0..n {
            let pool = Arc::clone(pool);
            let lane = lane.clone();
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            blockers.push(thread::spawn(move || {
                pool.run(&lane, move || {
                    started.wait();
                    release.wait();
                })
            }));
        }
        started.wait();
        move || {
            release.wait();
            for b in blockers {
                assert_eq!(b.join().unwrap(), Ok(()));
            }
        }
    }

    #[test]
    fn one_source_gets_an_eighth_and_the_console_keeps_a_quarter() {
        // capacity 16: two per lane, eight per class, twelve for anything but the console.
        let pool = Arc::new(HashPool::new(16, 16));
        let flood = hold(&pool, remote("198.51.100.1"), 2);
        assert_eq!(pool.run(&remote("198.51.100.1"), || ()), Err(Busy));
        assert_eq!(
            pool.run(&remote("192.0.2.7"), || "another address"),
            Ok("another address")
        );
        assert_eq!(pool.run(&Lane::Local(1000), || "a user"), Ok("a user"));
        assert_eq!(pool.run(&Lane::Service, || "console"), Ok("console"));
        flood();
        // Many addresses fill the remote half; users and the console still get in.
        let mut floods = Vec::new();
        for i in 0..4 {
            floods.push(hold(&pool, remote(&format!("203.0.113.{i}")), 2));
        }
        assert_eq!(pool.run(&remote("192.0.2.8"), || ()), Err(Busy));
        assert_eq!(pool.run(&Lane::Local(1000), || 1), Ok(1));
        assert_eq!(pool.run(&Lane::Service, || 2), Ok(2));
        // And users take what is left but the console's quarter, which stays the console's.
        for uid in 0..2 {
            floods.push(hold(&pool, Lane::Local(2000 + uid), 2));
        }
        assert_eq!(pool.run(&Lane::Local(3000), || ()), Err(Busy));
        assert_eq!(pool.run(&Lane::Service, || 3), Ok(3));
        for f in floods {
            f();
        }
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn waiting_lanes_take_turns_and_the_console_goes_first() {
        // One worker, held busy; then three jobs of one address, one of another and one of the
        // console are queued. The console's runs first, the other address's second.
        let pool = Arc::new(HashPool::new(1, 64));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let blocker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.run(&Lane::Local(1), move || {
                    started_tx.send(()).unwrap();
                    hold_rx.recv().unwrap();
                })
            })
        };
        started_rx.recv().unwrap();
        let mut waiting = Vec::new();
        for (who, lane) in [
            ("flood-1", remote("198.51.100.1")),
            ("flood-2", remote("198.51.100.1")),
            ("flood-3", remote("198.51.100.1")),
            ("other", remote("192.0.2.7")),
            ("console", Lane::Service),
        ] {
            let (p, order) = (Arc::clone(&pool), Arc::clone(&order));
            waiting.push(thread::spawn(move || {
                p.run(&lane, move || order.lock().unwrap().push(who))
            }));
            // Wait until the job is queued before submitting the next one.
            while pool.shared.lock().waiting() < waiting.len() {
                thread::yield_now();
            }
        }
        hold_tx.send(()).unwrap();
        blocker.join().unwrap().unwrap();
        for w in waiting {
            w.join().unwrap().unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order[0], "console", "{order:?}");
        assert_eq!(order[1], "flood-1", "{order:?}");
        assert_eq!(order[2], "other", "turns, not arrival order: {order:?}");
    }

    #[test]
    fn panicking_job_frees_its_slot() {
        let pool = HashPool::new(1, 1);
        assert_eq!(
            pool.run(&Lane::Service, || -> u8 { panic!("boom") }),
            Err(Busy)
        );
        assert_eq!(pool.in_flight(), 0);
    }
}
