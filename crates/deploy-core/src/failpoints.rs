//! Failpoints at every step that creates or changes state (docs/FAULTS.md lists them all).
//!
//! With the `failpoints` feature, [`failpoint`] evaluates a `fail` crate failpoint configured by
//! the `FAILPOINTS` environment variable (`pause`, `sleep(ms)`, `panic`, ...) — after touching
//! `$FLEET_FAILPOINT_MARKERS/<name>` if that variable names a directory, so that a test knows
//! the process has reached the point before it SIGKILLs it. Without the feature it does nothing.

/// Marks and evaluates the failpoint `name`.
#[inline]
pub fn failpoint(name: &'static str) {
    #[cfg(feature = "failpoints")]
    {
        if let Some(dir) = std::env::var_os("FLEET_FAILPOINT_MARKERS") {
            let _ = std::fs::write(std::path::Path::new(&dir).join(name), b"");
        }
        fail::fail_point!(name);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
