//! Waiting for a private server a test started to say it is ready.

use std::process::Child;
use std::time::{Duration, Instant};

use camino::Utf8Path;

/// Waits until `log` holds `line`, the line server `what` (our `child`) writes once it is
/// ready. Panics with the log if the server exits first, or — after killing it — if `bound`
/// passes first.
pub(crate) fn await_line(
    child: &mut Child,
    log: &Utf8Path,
    line: &str,
    bound: Duration,
    what: &str,
) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(line) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the test's {what} exited with {status}: {text}");
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the test's {what} was not ready within {bound:?}: {text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
