//! Memory the configuration budgets: allocated and written when an encoder or decoder is made,
//! so a budget that cannot be had is an error then ([`Error::OutOfMemory`]), not an abort of the
//! host process later. Buffers the configuration does not bound (a whole epoch's frame, the set
//! of pages sent) grow only through [`grow`], which fails with the same error instead of
//! aborting.

use crate::Error;

/// `n` copies of `value`, in memory allocated and written now (so it is the process's from now
/// on, not at first touch). Written by doubling copies (a few dozen `memcpy`s, not `n` stores:
/// one loop iteration per element is what makes Miri take minutes over a cache).
pub(crate) fn filled<T: Copy>(n: usize, value: T, what: &'static str) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    grow(&mut v, n, what)?;
    if n > 0 {
        v.push(value);
    }
    while v.len() < n {
        let k = v.len().min(n - v.len());
        v.extend_from_within(..k);
    }
    Ok(v)
}

/// Makes room for `additional` more elements in `v`, so that pushing them cannot reallocate.
#[inline]
pub(crate) fn grow<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<(), Error> {
    // (a no-op when the room is there already)
    v.try_reserve(additional).map_err(|_| Error::OutOfMemory {
        what,
        bytes: additional.saturating_mul(std::mem::size_of::<T>()),
    })
}

/// Makes `v`'s capacity at least `total` elements.
#[inline]
pub(crate) fn grow_to<T>(v: &mut Vec<T>, total: usize, what: &'static str) -> Result<(), Error> {
    grow(v, total.saturating_sub(v.len()), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_request_is_an_error_not_an_abort() {
        let mut v: Vec<u64> = Vec::new();
        let e = grow(&mut v, usize::MAX / 4, "test").unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { what: "test", .. }), "{e}");
        assert!(filled(usize::MAX / 2, 0u8, "test").is_err());
        for n in [0, 1, 3, 4, 1000] {
            let v = filled(n, 7u16, "test").unwrap();
            assert!(v.len() == n && v.iter().all(|&x| x == 7), "{n}");
        }
        grow(&mut v, 10, "test").unwrap();
        assert!(v.capacity() >= 10);
    }
}
