//! A bound on what a tar parser reads between two entries.
//!
//! The `tar` crate reads an entry's GNU long name, long link name and PAX extended header
//! (and a sparse file's extra map blocks) whole into memory before it shows the entry, however
//! large the archive says they are: a 500 KiB gzip layer made kekkai hold 670 MB, an 8 KiB
//! sparse archive file 2.6 GB. A [`Budgeted`] reader sits under the parser; while a
//! [`Budget`] is open (around each `next()` of the entries), at most its number of bytes may
//! pass, which bounds those headers. The entries' data is read with the budget closed, under
//! the caps of its own.

use std::cell::Cell;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

/// What the headers of one entry may take: names are at most 4096 bytes, and PAX records
/// (extended attributes, times) rarely a few KiB.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The payload of the I/O error a [`Budgeted`] reader returns past its budget.
#[derive(Debug)]
pub struct HeadersTooLong(pub u64);

impl std::fmt::Display for HeadersTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an entry's headers (a GNU long name, a PAX extended header, a sparse map) are longer than {} bytes",
            self.0
        )
    }
}

impl std::error::Error for HeadersTooLong {}

/// The budget of a [`Budgeted`] reader: open (a number of bytes) or closed (no bound).
#[derive(Clone, Default)]
pub struct Budget(Rc<Cell<Option<(u64, u64)>>>);

impl Budget {
    /// From now on at most `bytes` may be read, until [`Budget::close`].
    pub fn open(&self, bytes: u64) {
        self.0.set(Some((bytes, bytes)));
    }

    /// No bound any more.
    pub fn close(&self) {
        self.0.set(None);
    }
}

/// A reader (and seeker) that fails once more than its open [`Budget`] has been read.
pub struct Budgeted<R> {
    inner: R,
    budget: Budget,
}

impl<R> Budgeted<R> {
    /// Wraps `inner`; the budget starts closed.
    pub fn new(inner: R) -> (Budgeted<R>, Budget) {
        let budget = Budget::default();
        (
            Budgeted {
                inner,
                budget: budget.clone(),
            },
            budget,
        )
    }
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((left, all)) = self.budget.0.get() else {
            return self.inner.read(buf);
        };
        // One byte more than is left: reading it is what tells "too long" from "just fits".
        let want = buf
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.inner.read(buf)?;
        let n64 = crate::sys::abi::len64(n);
        match left.checked_sub(n64) {
            Some(rest) => {
                self.budget.0.set(Some((rest, all)));
                Ok(n)
            }
            None => Err(std::io::Error::other(HeadersTooLong(all))),
        }
    }
}

impl<R: Seek> Seek for Budgeted<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The budget an I/O error reports, if a [`Budgeted`] reader's budget caused it (also when the
/// tar crate wrapped it in an error of its own).
pub fn exceeded(e: &std::io::Error) -> Option<u64> {
    let inner = e.get_ref()?;
    if let Some(x) = inner.downcast_ref::<HeadersTooLong>() {
        return Some(x.0);
    }
    inner.downcast_ref::<std::io::Error>().and_then(exceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::closed(None, 10_000, Ok(10_000))]
    #[case::fits(Some(10_000), 10_000, Ok(10_000))]
    #[case::one_over(Some(9_999), 10_000, Err(9_999))]
    #[case::zero(Some(0), 1, Err(0))]
    fn reads_at_most_the_budget(
        #[case] budget: Option<u64>,
        #[case] len: usize,
        #[case] want: Result<u64, u64>,
    ) {
        let data = vec![7u8; len];
        let (mut r, b) = Budgeted::new(&data[..]);
        if let Some(n) = budget {
            b.open(n);
        }
        let got = std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| exceeded(&e).unwrap());
        assert_eq!(got, want);
    }

    #[test]
    fn a_closed_budget_lets_everything_through() {
        let data = [7u8; 100];
        let (mut r, b) = Budgeted::new(&data[..]);
        b.open(10);
        let mut ten = [0u8; 10];
        r.read_exact(&mut ten).unwrap();
        b.close();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), 90);
    }
}
