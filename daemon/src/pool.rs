//! The bounded hashing pool.
//!
//! PBKDF2 at 600 000 iterations costs tens of milliseconds of CPU; a peer must not be able to make
//! the daemon queue that work without limit. Jobs run on a fixed set of threads; at most
//! `capacity` jobs may be queued or running, of which the last quarter is kept for root peers
//! (sshd, login, su) so that a local user flooding the socket cannot starve real logins. Past the
//! bound the caller gets [`Busy`] at once. Cheap requests never enter the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool is full for this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

pub struct HashPool {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
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
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..threads.max(1))
            .map(|i| {
                let receiver = Arc::clone(&receiver);
                thread::Builder::new()
                    .name(format!("hash-{i}"))
                    .spawn(move || {
                        loop {
                            let job = match receiver.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            match job {
                                // A panicking job must not take a worker with it; its caller
                                // sees the dropped result channel as Busy.
                                Ok(job) => {
                                    let _ =
                                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                                }
                                Err(_) => return,
                            }
                        }
                    })
                    .expect("spawning a hashing thread at startup")
            })
            .collect();
        HashPool {
            sender: Mutex::new(Some(sender)),
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
        let sent = match self.sender.lock() {
            Ok(guard) => guard.as_ref().map(|s| s.send(job).is_ok()).unwrap_or(false),
            Err(_) => false,
        };
        if !sent {
            return Err(Busy);
        }
        rx.recv().map_err(|_| Busy)
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Lets queued jobs finish, then stops the threads.
    pub fn shutdown(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Ok(mut workers) = self.workers.lock() {
            for w in workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}

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
    fn panicking_job_frees_its_slot() {
        let pool = HashPool::new(1, 1);
        assert_eq!(pool.run(true, || -> u8 { panic!("boom") }), Err(Busy));
        assert_eq!(pool.in_flight(), 0);
    }
}
