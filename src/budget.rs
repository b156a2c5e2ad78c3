//! Memory the configuration budgets: allocated and written when an encoder or decoder is made,
//! so a budget that cannot be had is an error then ([`Error::OutOfMemory`]), not an abort of the
//! host process later. Buffers the configuration does not bound (a whole epoch's frame, the set
//! of pages sent) grow only through [`grow`], which fails with the same error instead of
//! aborting.

use crate::Error;

/// `n` copies of `value`, in memory allocated and written now (so it is the process's from now
/// on, not at first touch). Written by doubling copies (a few dozen `memcpy`s, not `n` stores:
/// one loop iteration per element is what makes Miri take minutes over a cache). Large buffers
/// are first offered huge pages ([`advise_huge_pages`]).
pub(crate) fn filled<T: Copy>(n: usize, value: T, what: &'static str) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    grow(&mut v, n, what)?;
    advise_huge_pages(&v);
    if n > 0 {
        v.push(value);
    }
    while v.len() < n {
        let k = v.len().min(n - v.len());
        v.extend_from_within(..k);
    }
    Ok(v)
}

/// Asks Linux to back the capacity of `v` with transparent huge pages: each 2 MiB-aligned
/// 2 MiB it spans (none in a buffer under 2 MiB; on other systems nothing is asked). A 32 MiB
/// cache is then written through 16 page faults instead of 8,192, and its slots, read at random,
/// miss the TLB less. A hint: contents and sizes stay as they are, and a system without huge
/// pages ignores it.
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        const HUGE: usize = 2 << 20;
        let (start, bytes) = (v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
        // the 2 MiB-aligned part of the buffer: madvise takes whole pages of the buffer's own
        let from = start.next_multiple_of(HUGE);
        let to = (start + bytes) / HUGE * HUGE;
        if to > from {
            // SAFETY: [from, to) lies inside `v`'s allocation, which this process owns and
            // keeps; MADV_HUGEPAGE changes how the kernel backs those pages, never their
            // contents or whether they are mapped. When it fails (a kernel without huge pages)
            // the memory stays as it was, so the result is not needed.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = v;
}

/// Makes room for `additional` more elements in `v`, so that pushing them cannot reallocate.
#[inline]
pub(crate) fn grow<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<(), Error> {
    // (a no-op when the room is there already)
    v.try_reserve(additional)
        .map_err(|_| no_memory::<T>(what, additional))
}

/// The error of a buffer of `T` that could not grow by `additional` elements.
fn no_memory<T>(what: &'static str, additional: usize) -> Error {
    Error::OutOfMemory {
        what,
        bytes: additional.saturating_mul(std::mem::size_of::<T>()),
    }
}

/// Makes `v`'s capacity at least `total` elements.
#[inline]
pub(crate) fn grow_to<T>(v: &mut Vec<T>, total: usize, what: &'static str) -> Result<(), Error> {
    grow(v, total.saturating_sub(v.len()), what)
}

/// Makes `v`'s capacity at least `total` elements, and no more than that when it grows (for a
/// buffer sized once for a known total, where [`grow_to`]'s doubling would hold up to twice it).
#[inline]
pub(crate) fn grow_to_exact<T>(
    v: &mut Vec<T>,
    total: usize,
    what: &'static str,
) -> Result<(), Error> {
    let additional = total.saturating_sub(v.len());
    v.try_reserve_exact(additional)
        .map_err(|_| no_memory::<T>(what, additional))
}

/// Makes `v`'s capacity at least `total` elements, growing it by a quarter at least when it
/// grows: for a buffer that grows a little at a time to a size not known before (a whole
/// epoch's frame), where [`grow_to`]'s doubling would hold up to twice what it ends up needing.
/// (Large buffers are moved by remapping their pages, so the extra steps copy nothing.)
#[inline]
pub(crate) fn grow_to_stepped<T>(
    v: &mut Vec<T>,
    total: usize,
    what: &'static str,
) -> Result<(), Error> {
    if v.capacity() >= total {
        return Ok(());
    }
    let step = v.capacity().saturating_add(v.capacity() / 4);
    grow_to_exact(v, total.max(step), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budgeted buffer of several MiB holds exactly what was written, and on Linux with
    /// transparent huge pages its mapping is marked for them (the `hg` flag madvise sets, which
    /// does not depend on whether the kernel finds free huge pages at the time).
    #[test]
    fn a_large_buffer_is_offered_huge_pages_and_keeps_its_contents() {
        let n = 9 << 20;
        let v = filled(n, 0xa5u8, "test").unwrap();
        assert!(v.len() == n && v.iter().all(|&x| x == 0xa5));
        #[cfg(all(target_os = "linux", not(miri)))]
        if std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            // the mapping holding the buffer's middle, then its VmFlags line
            let at = v.as_ptr() as usize + n / 2;
            let mut inside = false;
            let mut flags = None;
            for line in smaps.lines() {
                if let Some((range, _)) = line.split_once(' ') {
                    if let Some((a, b)) = range.split_once('-') {
                        if let (Ok(a), Ok(b)) =
                            (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                        {
                            inside = a <= at && at < b;
                            continue;
                        }
                    }
                }
                if inside {
                    if let Some(f) = line.strip_prefix("VmFlags:") {
                        flags = Some(f.split_whitespace().any(|f| f == "hg"));
                    }
                }
            }
            assert_eq!(flags, Some(true), "the buffer's mapping has no hg flag");
        }
    }

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
