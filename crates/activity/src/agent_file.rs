//! Files an agent controls — its log, its progress and findings files — read safely: an agent
//! can replace any of them with a FIFO (whose open or read would block forever), a device, a
//! symlink out of the workspace, or a file of gigabytes with no newline. Every read of such a
//! file goes through here: only a regular file is read (opened non-blocking, without following
//! a symlink, its type checked on the open file), and memory stays bounded whatever its size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// The longest line read from an agent's file; a longer one is skipped as truncated.
pub const LINE_CAP: usize = 8 << 20;

/// How much of the end of a file [`tail_lines`] reads.
const TAIL_BYTES: u64 = 64 * 1024;

/// Opens the regular file at `path` for reading, never blocking and never following a symlink
/// at its last component; anything else — a FIFO, a device, a directory, a symlink — is an
/// error of kind `InvalidInput` naming it.
pub fn open(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                not_regular(path, "a symlink")
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_regular(
            path,
            if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            },
        ));
    }
    Ok(file)
}

fn not_regular(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}: an agent's file is read only when it is a regular file",
            path.display()
        ),
    )
}

/// One step of reading lines with [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line (its newline included) of this many bytes, in the buffer.
    Whole(usize),
    /// A line over [`LINE_CAP`]: this many bytes of it were skipped (its newline included when
    /// `ended`); the buffer holds nothing of it.
    Skipped {
        /// Bytes consumed.
        bytes: u64,
        /// Whether its end was reached.
        ended: bool,
    },
    /// The end of what is there now: a line still being written (its bytes left unread), or
    /// nothing.
    End,
}

/// Reads the next line of `reader` into `buf` (cleared first), never holding more than
/// [`LINE_CAP`] bytes: a longer line is consumed and skipped.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let n = reader.take(LINE_CAP as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        return Ok(Line::Whole(n));
    }
    if n <= LINE_CAP {
        // Still being written: it is read again from its start next time.
        return Ok(Line::End);
    }
    buf.clear();
    let (rest, ended) = skip_line(reader)?;
    Ok(Line::Skipped {
        bytes: n as u64 + rest,
        ended,
    })
}

/// Consumes up to and including the next newline; how many bytes, and whether it was found.
pub fn skip_line(reader: &mut impl BufRead) -> io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((skipped, false));
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok((skipped + i as u64 + 1, true));
        }
        let len = available.len();
        reader.consume(len);
        skipped += len as u64;
    }
}

/// The whole lines of the agent's file at `path` (none when it is missing or not a regular
/// file); lines over [`LINE_CAP`] are left out, and at most `cap` bytes of lines are kept (the
/// first ones).
pub fn lines(path: &Path, cap: usize) -> Vec<String> {
    let Ok(file) = open(path) else {
        return Vec::new();
    };
    let mut reader = BufReader::new(file);
    let (mut buf, mut out, mut kept) = (Vec::new(), Vec::new(), 0usize);
    while let Ok(step) = read_line(&mut reader, &mut buf) {
        match step {
            Line::Whole(n) if kept + n <= cap => {
                kept += n;
                out.push(
                    String::from_utf8_lossy(&buf)
                        .trim_end_matches('\n')
                        .to_owned(),
                );
            }
            Line::Whole(_) | Line::End => break,
            Line::Skipped { .. } => {}
        }
    }
    out
}

/// The last `n` lines of the agent's file at `path`, from its last 64 KiB (none when it is
/// missing or not a regular file).
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.take(TAIL_BYTES).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_directory_and_a_symlink_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = open(&fifo).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert!(open(dir.path()).is_err());
        let target = dir.path().join("target");
        std::fs::write(&target, "x\n").unwrap_or_else(|e| panic!("{e}"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
        let e = open(&link).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("a symlink"), "{e}");
        assert!(lines(&fifo, 1 << 20).is_empty());
        assert!(tail_lines(&fifo, 5).is_empty());
        assert_eq!(lines(&target, 1 << 20), ["x"]);
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_and_the_next_one_read() {
        let mut data = vec![b'a'; LINE_CAP + 10];
        data.push(b'\n');
        data.extend_from_slice(b"next\n");
        let mut reader = BufReader::new(&data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf).unwrap_or(Line::End),
            Line::Skipped {
                bytes: LINE_CAP as u64 + 11,
                ended: true
            }
        );
        assert!(buf.capacity() <= 2 * (LINE_CAP + 1), "memory stays bounded");
        assert_eq!(
            read_line(&mut reader, &mut buf).unwrap_or(Line::End),
            Line::Whole(5)
        );
        assert_eq!(buf, b"next\n");
        assert_eq!(
            read_line(&mut reader, &mut buf).unwrap_or(Line::Whole(0)),
            Line::End
        );
    }
}
