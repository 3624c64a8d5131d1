//! Parsing many rows' entries on every core: a read of a task's 10,000 agents spends twice as
//! long parsing their entries as SQLite spends stepping through the rows. The thread that steps
//! hands the texts over in chunks of [`CHUNK`] rows as it goes, to parsers it starts with the
//! first full chunk (so a read of fewer rows starts none), then parses what is left beside
//! them. Entries come back in the rows' order; the first row that does not parse is the error.

use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Rows handed to a parser at a time: enough that handing over costs nothing next to parsing.
pub(crate) const CHUNK: usize = 512;

/// At most this many threads parse, the stepping one included.
const MOST_THREADS: usize = 4;

/// Texts of consecutive rows, back to back.
#[derive(Default)]
struct Chunk {
    /// Its place among the chunks.
    index: usize,
    text: String,
    /// Where each row's text ends in `text`.
    ends: Vec<usize>,
}

impl Chunk {
    fn rows(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }
}

type Parsed<T, E> = (usize, Result<Vec<T>, E>);

/// Every row `step` gives (it calls its argument with each row's text, in order), parsed by
/// `parse`, in the rows' order. The first error of `step` or, failing that, of the earliest row
/// that does not parse, is the result.
pub(crate) fn parse_rows<T: Send, E: Send>(
    step: impl FnOnce(&mut dyn FnMut(&str)) -> Result<(), E>,
    parse: impl Fn(&str) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let results: Mutex<Vec<Parsed<T, E>>> = Mutex::new(Vec::new());
    let parse_chunk = |chunk: Chunk| {
        let parsed = chunk.rows().map(&parse).collect::<Result<Vec<T>, E>>();
        results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((chunk.index, parsed));
    };
    let (send, receive) = mpsc::channel::<Chunk>();
    let receive = Mutex::new(receive);
    let drain = || {
        loop {
            // The lock is held only to take a chunk, not while it is parsed.
            let next = receive
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            match next {
                Ok(chunk) => parse_chunk(chunk),
                Err(_) => break,
            }
        }
    };
    let stepped = thread::scope(|scope| {
        let mut chunk = Chunk::default();
        let mut started = false;
        let stepped = step(&mut |text| {
            chunk.text.push_str(text);
            chunk.ends.push(chunk.text.len());
            if chunk.ends.len() == CHUNK {
                let index = chunk.index;
                let full = std::mem::replace(
                    &mut chunk,
                    Chunk {
                        index: index + 1,
                        ..Chunk::default()
                    },
                );
                if !started {
                    // Asked only now: a read of fewer rows never needs to know.
                    started = true;
                    let threads = thread::available_parallelism()
                        .map_or(1, usize::from)
                        .min(MOST_THREADS);
                    for _ in 1..threads {
                        // A thread that cannot be started (a process at its limit) is a
                        // parser fewer: the stepping thread parses whatever is left.
                        if thread::Builder::new().spawn_scoped(scope, drain).is_err() {
                            break;
                        }
                    }
                }
                // The parsers outlive the sender (they stop when it is dropped): a send
                // cannot fail.
                let _ = send.send(full);
            }
        });
        drop(send);
        if stepped.is_ok() {
            parse_chunk(chunk);
            drain();
        }
        stepped
    });
    stepped?;
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(index, _)| *index);
    let mut out = Vec::new();
    for (_, parsed) in results {
        out.extend(parsed?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i}")).collect()
    }

    fn parsed(texts: &[String], bad: Option<usize>) -> Result<Vec<usize>, String> {
        parse_rows(
            |each| {
                for t in texts {
                    each(t);
                }
                Ok(())
            },
            |text| match text.parse::<usize>() {
                Ok(i) if Some(i) == bad => Err(format!("row {i}")),
                Ok(i) => Ok(i),
                Err(e) => Err(e.to_string()),
            },
        )
    }

    #[test]
    fn every_row_comes_back_in_order_whatever_the_count() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 3] {
            let texts = rows(n);
            assert_eq!(parsed(&texts, None), Ok((0..n).collect()), "{n} rows");
        }
    }

    #[test]
    fn the_earliest_row_that_does_not_parse_is_the_error() {
        let texts = rows(5 * CHUNK);
        for bad in [0, CHUNK + 2, 5 * CHUNK - 1] {
            assert_eq!(parsed(&texts, Some(bad)), Err(format!("row {bad}")));
        }
    }

    #[test]
    fn an_error_stepping_is_the_error() {
        let out: Result<Vec<usize>, String> = parse_rows(
            |each| {
                for t in rows(3 * CHUNK) {
                    each(&t);
                }
                Err("disk".to_owned())
            },
            |text| text.parse::<usize>().map_err(|e| e.to_string()),
        );
        assert_eq!(out, Err("disk".to_owned()));
    }
}
