//! The bounded hashing pool.
//!
//! PBKDF2 at 600 000 iterations costs tens of milliseconds of CPU; a peer must not be able to make
//! the daemon queue that work without limit. Jobs run on a fixed set of threads; at most
//! `capacity` jobs may be queued or running, of which the last quarter is kept for root peers
//! (sshd, login, su) so that a local user flooding the socket cannot starve real logins. Past the
//! bound the caller gets [`Busy`] at once. Cheap requests never enter the pool.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool is full for this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Waiting jobs. Root's jobs are taken first: a reserve of admission slots alone would still let
/// a root login wait behind every queued job of a flooding user.
#[derive(Default)]
struct Queues {
    root: VecDeque<Job>,
    others: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job, root's first; `None` once the pool is closed and drained.
    fn next_job(&self) -> Option<Job> {
        let mut queues = self.lock();
        loop {
            if let Some(job) = queues
                .root
                .pop_front()
                .or_else(|| queues.others.pop_front())
            {
                return Some(job);
            }
            if queues.closed {
                return None;
            }
            queues = self.ready.wait(queues).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub struct HashPool {
    shared: Arc<Shared>,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    reserved_for_root: usize,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// Decrements the in-flight count however the job ends (even by panic).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    pub fn new(threads: usize, capacity: usize) -> HashPool {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
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
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
            reserved_for_root: capacity / 4,
            workers: Mutex::new(workers),
        }
    }

    /// Runs `work` on the pool and waits for its result, or answers [`Busy`] immediately.
    pub fn run<T, F>(&self, privileged: bool, work: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let limit = if privileged {
            self.capacity
        } else {
            self.capacity - self.reserved_for_root
        };
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(Busy);
        }
        let slot = Slot(Arc::clone(&self.in_flight));
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let result = work();
            // Free the slot before the caller wakes up, so that a caller who sees its result
            // also sees the capacity it held returned. A panic in `work` drops it while unwinding.
            drop(slot);
            let _ = tx.send(result);
        });
        {
            let mut queues = self.shared.lock();
            if queues.closed {
                return Err(Busy);
            }
            if privileged {
                queues.root.push_back(job);
            } else {
                queues.others.push_back(job);
            }
        }
        self.shared.ready.notify_one();
        rx.recv().map_err(|_| Busy)
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
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

    #[test]
    fn runs_jobs_and_returns_results() {
        let pool = HashPool::new(2, 8);
        assert_eq!(pool.run(false, || 6 * 7), Ok(42));
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn hashing_threads_run_at_a_lower_priority() {
        let pool = HashPool::new(1, 4);
        // SAFETY: getpriority of the calling thread.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let theirs = pool
            .run(true, || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
            .unwrap();
        assert_eq!(theirs, (ours + HASH_NICE).min(19));
    }

    #[test]
    fn full_pool_answers_busy_and_keeps_room_for_root() {
        // capacity 4: 3 for anyone, the 4th only for root.
        let pool = Arc::new(HashPool::new(4, 4));
        let release = Arc::new(Barrier::new(4));
        let started = Arc::new(Barrier::new(4));
        let mut blockers = Vec::new();
        for _ in 0..3 {
            let pool = Arc::clone(&pool);
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            blockers.push(thread::spawn(move || {
                pool.run(false, move || {
                    started.wait();
                    release.wait();
                })
            }));
        }
        started.wait();
        assert_eq!(pool.run(false, || ()), Err(Busy));
        assert_eq!(pool.run(true, || "root"), Ok("root"));
        release.wait();
        for b in blockers {
            assert_eq!(b.join().unwrap(), Ok(()));
        }
        assert_eq!(pool.run(false, || 1), Ok(1));
    }

    #[test]
    fn root_jobs_overtake_queued_jobs_of_others() {
        // One worker, held busy; then two jobs of others and one of root are queued. Root's
        // must run first.
        let pool = Arc::new(HashPool::new(1, 8));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let blocker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.run(false, move || {
                    started_tx.send(()).unwrap();
                    hold_rx.recv().unwrap();
                })
            })
        };
        started_rx.recv().unwrap();
        let mut waiting = Vec::new();
        for (who, privileged) in [("other-1", false), ("other-2", false), ("root", true)] {
            let (p, order) = (Arc::clone(&pool), Arc::clone(&order));
            waiting.push(thread::spawn(move || {
                p.run(privileged, move || order.lock().unwrap().push(who))
            }));
            // Wait until the job is queued before submitting the next one.
            while {
                let q = pool.shared.lock();
                q.root.len() + q.others.len()
            } < waiting.len()
            {
                thread::yield_now();
            }
        }
        hold_tx.send(()).unwrap();
        blocker.join().unwrap().unwrap();
        for w in waiting {
            w.join().unwrap().unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "root");
    }

    #[test]
    fn panicking_job_frees_its_slot() {
        let pool = HashPool::new(1, 1);
        assert_eq!(pool.run(true, || -> u8 { panic!("boom") }), Err(Busy));
        assert_eq!(pool.in_flight(), 0);
    }
}
