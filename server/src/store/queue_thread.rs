//! [`QueueThread`]: a named OS thread that works through a queue of jobs in order, and
//! finishes them before it goes away.
//!
//! Both redb writers of a node are one of these (the log writer in `log_store`, the state
//! writer in `state_writer`): a thread of its own keeps each file's writes in order
//! without a lock, and stays on one thread instead of being passed around tokio's
//! blocking pool. Owns: the thread and its queue. Must not touch: what the jobs do.

use std::sync::mpsc;
use std::thread::JoinHandle;

pub struct QueueThread<Job> {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl<Job: Send + 'static> QueueThread<Job> {
    /// Starts thread `name` running `work`, which gets the receiving end of the queue and
    /// should return once it is closed and drained.
    pub fn start<W>(name: &str, work: W) -> std::io::Result<Self>
    where
        W: FnOnce(mpsc::Receiver<Job>) + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || work(jobs))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `job`; gives it back if the thread has ended.
    pub fn send(&self, job: Job) -> Result<(), Job> {
        match &self.queue {
            Some(queue) => queue.send(job).map_err(|mpsc::SendError(job)| job),
            None => Err(job),
        }
    }
}

impl<Job> Drop for QueueThread<Job> {
    /// Closes the queue and waits for the thread: it ends after the jobs already queued,
    /// so whatever file it writes is closed once its owner is gone, and can be reopened.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    #[test]
    fn jobs_run_in_order_and_all_queued_jobs_finish_before_drop_returns() -> std::io::Result<()> {
        let done = Arc::new(Mutex::new(Vec::new()));
        let thread = QueueThread::start("test-queue", {
            let done = done.clone();
            move |jobs: mpsc::Receiver<u32>| {
                for job in jobs {
                    std::thread::sleep(Duration::from_millis(1));
                    done.lock().expect("not poisoned").push(job);
                }
            }
        })?;
        for job in 0..20 {
            assert!(thread.send(job).is_ok());
        }
        drop(thread);
        assert_eq!(
            *done.lock().expect("not poisoned"),
            (0..20).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[test]
    fn a_job_sent_after_the_thread_ended_comes_back() -> std::io::Result<()> {
        // The thread returns at once, closing its end of the queue.
        let thread = QueueThread::start("test-queue", |_jobs: mpsc::Receiver<u32>| {})?;
        let started = Instant::now();
        loop {
            match thread.send(7) {
                Err(job) => break assert_eq!(job, 7),
                Ok(()) => assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the thread never ended"
                ),
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}
