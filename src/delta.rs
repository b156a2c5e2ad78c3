//! Placeholder scalar delta codec, replaced by the SIMD one from the `scan` branch.
#![allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    Truncated,
    BadVarint,
    ZeroLength,
    ZeroSkip,
    OutOfBounds,
}
impl std::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for DeltaError {}
pub const fn max_encoded_len(len: usize) -> usize {
    len + 2 * crate::varint::MAX_LEN
}
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
pub fn validate(src: &[u8], page_len: usize) -> Result<(), DeltaError> {
    let mut p = vec![0u8; page_len];
    decode(src, &mut p)
}
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
