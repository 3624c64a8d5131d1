//! The JSON registry against the Python server's files and against concurrent OS processes,
//! one module per concern; `common` makes workspaces, `stress` drives the helper binary.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod caches;
mod common;
mod corruption;
mod fields;
mod format;
mod limits;
mod locks;
mod processes;
mod repair;
mod stress;
