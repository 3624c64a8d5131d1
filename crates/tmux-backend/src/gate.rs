//! The gate an agent waits behind until its deployment lets it run: a FIFO beside its log.
//!
//! The backend creates the FIFO and holds it open for writing (read-write, so opening never
//! blocks) before the session starts. The wrapper opens it for reading, unlinks it, and reads
//! one byte: [`OPEN`] lets the agent run; end of file — the backend closed it without writing,
//! because the deployment was rolled back, or the deploying process died and the kernel closed
//! it — ends the wrapper before the agent ever executed. So a deployment refused by a limit, or
//! killed with SIGKILL, never had its agent run.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// The byte that lets the agent run.
pub const OPEN: u8 = b'1';

/// Where the gate of the agent logging to `log` is: `<log>.gate`.
pub fn path_for(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".gate");
    name.into()
}

/// Creates the FIFO at `path` (replacing a stale one) and opens it read-write: the writer's
/// end, held until [`open`] or a drop.
pub fn create(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(deploy_core::private::FILE_MODE),
        0,
    )?;
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Whether the wrapper has reached the gate at `path`: it unlinks the FIFO once it holds its
/// reading end, so a byte written from then on cannot be lost with the last close.
pub fn reached(path: &Path) -> bool {
    !path.exists()
}

/// Lets the agent behind the gate run (and closes the writer's end). Call it once [`reached`]:
/// a byte written to a FIFO nobody reads is discarded when the writer closes.
pub fn open(mut writer: File) -> std::io::Result<()> {
    writer.write_all(&[OPEN])
}

/// The wrapper's side: waits at the gate at `path`. `Ok(true)` when it was opened, `Ok(false)`
/// when it was closed without being opened (or had no writer at all).
pub fn wait(path: &Path) -> std::io::Result<bool> {
    // Non-blocking open: with no writer left, a blocking open would wait for ever.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let _ = std::fs::remove_file(path); // the name has done its job
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    let mut reader = File::from(fd);
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(byte[0] == OPEN),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opened_gate_lets_through_and_a_dropped_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gate");
        let writer = create(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || wait(&path).unwrap())
        };
        while !reached(&path) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        open(writer).unwrap();
        assert!(waiter.join().unwrap());

        let writer = create(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || wait(&path).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(writer);
        assert!(
            !waiter.join().unwrap(),
            "closed without opening: never runs"
        );
        assert!(!path.exists(), "the waiter unlinked it");
    }
}
