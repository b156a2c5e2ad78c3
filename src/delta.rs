//! Placeholder scalar delta codec, replaced by the SIMD one from the `scan` branch.
/// Why a delta does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    /// The delta ends inside a run.
    Truncated,
    /// A malformed varint.
    BadVarint,
    /// A run of zero bytes.
    ZeroLength,
    /// A zero skip after the first run.
    ZeroSkip,
    /// A run past the end of the page.
    OutOfBounds,
}
impl std::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for DeltaError {}
/// Longest delta a frame may carry for a `len`-byte page (not a bound of [`encode`]'s output,
/// which can exceed the page; the encoder sends only deltas well below the page size).
pub const fn max_encoded_len(len: usize) -> usize {
    len + 2 * crate::varint::MAX_LEN
}
/// Encodes the runs where `new` differs from `old` into `out`: its length, or `None` when it
/// does not fit.
pub fn encode(old: &[u8], new: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut v = Vec::new();
    let mut i = 0;
    let mut last = 0;
    while i < new.len() {
        if old[i] == new[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < new.len() && old[i] != new[i] {
            i += 1;
        }
        crate::varint::put(&mut v, (s - last) as u64);
        crate::varint::put(&mut v, (i - s) as u64);
        v.extend_from_slice(&new[s..i]);
        last = i;
    }
    if v.len() > out.len() {
        return None;
    }
    out[..v.len()].copy_from_slice(&v);
    Some(v.len())
}
/// Checks that `src` decodes onto a page of `page_len` bytes.
pub fn validate(src: &[u8], page_len: usize) -> Result<(), DeltaError> {
    let mut p = vec![0u8; page_len];
    decode(src, &mut p)
}
/// Applies the delta `src` to `page` (which holds the old version).
pub fn decode(src: &[u8], page: &mut [u8]) -> Result<(), DeltaError> {
    let mut pos = 0;
    let mut at = 0usize;
    let mut first = true;
    while pos < src.len() {
        let skip = crate::varint::get(src, &mut pos).ok_or(DeltaError::BadVarint)? as usize;
        if skip == 0 && !first {
            return Err(DeltaError::ZeroSkip);
        }
        let len = crate::varint::get(src, &mut pos).ok_or(DeltaError::Truncated)? as usize;
        if len == 0 {
            return Err(DeltaError::ZeroLength);
        }
        at = at.checked_add(skip).ok_or(DeltaError::OutOfBounds)?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= page.len())
            .ok_or(DeltaError::OutOfBounds)?;
        let data = src.get(pos..pos + len).ok_or(DeltaError::Truncated)?;
        page[at..end].copy_from_slice(data);
        pos += len;
        at = end;
        first = false;
    }
    Ok(())
}
