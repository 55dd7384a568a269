//! Removing a resource when its handle drops, even from inside an async test or a panic.
//!
//! Drop cannot be async, and blocking on the test's own runtime would deadlock a current-thread
//! runtime, so cleanup runs on a fresh thread with a runtime of its own and is waited for: the
//! resource is gone by the time the next line of the test runs.

use std::future::Future;

pub(crate) fn run_to_completion<F>(what: &str, work: F)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(work)
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        // A leaked resource is untidy, not wrong: its unique name keeps it out of every other test.
        Ok(Err(error)) => eprintln!("test-support: could not remove {what}: {error:#}"),
        Err(_) => eprintln!("test-support: removing {what} panicked"),
    }
}
