//! Whole-page copies into the replica with non-temporal (streaming) stores.
//!
//! A frame of many pages writes memory the caches do not hold, and the replica is not read back
//! soon. A plain copy first reads every destination cache line from memory (read for
//! ownership), then writes it back; a streaming store writes the line without reading it, so a
//! page copy moves a third less memory. Frames of a few pages keep plain copies: too few lines
//! for the difference to matter, and their pages may still be in cache when they are read.
//!
//! The rule: after streaming stores, [`Streamer::finish`] must run before the replica is
//! handed back (streaming stores are weakly ordered; the fence makes them visible to other
//! threads in program order).

/// Payload bytes from which a frame's page copies stream: 64 pages of 4 KiB, so the parts of an
/// epoch sent in 1 MiB frames stream, and so does a QEMU multifd packet of 64 RAW pages or
/// more. (On 1 MiB parts of RAW pages, streaming halves the apply pass: proc-node at 100
/// Gbit/s, 18.7 -> 9.5 ms.)
pub(super) const STREAM_MIN_PAYLOAD: usize = 256 << 10;

/// Copies pages into the replica, streaming when it was created with `stream` set.
pub(super) struct Streamer {
    stream: bool,
    used: bool,
}

impl Streamer {
    pub(super) fn new(stream: bool) -> Self {
        Streamer {
            stream,
            used: false,
        }
    }

    /// `dst.copy_from_slice(src)`: `dst` and `src` must be equally long.
    #[inline]
    pub(super) fn copy(&mut self, dst: &mut [u8], src: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if self.stream && dst.len() == src.len() && dst.len() >= 256 {
            self.used = true;
            x86::copy_streaming(dst, src);
            return;
        }
        dst.copy_from_slice(src);
    }

    /// Orders the streaming stores made so far before every later store (a store fence).
    #[inline]
    pub(super) fn finish(&mut self) {
        if std::mem::take(&mut self.used) {
            // SAFETY: SSE is part of the x86_64 baseline; a fence has no other precondition.
            // (Miri runs plain stores instead of streaming ones, see `x86::store`.)
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            unsafe {
                core::arch::x86_64::_mm_sfence()
            };
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{__m128i, _mm_loadu_si128};

    /// A streaming store of `v` to 16-byte-aligned `p`. Miri cannot run the instruction (it is
    /// inline assembly); there the same pointer takes a plain aligned store, so Miri still
    /// checks bounds, alignment and aliasing.
    ///
    /// # Safety
    /// `p` must be valid for a 16-byte write and 16-byte aligned.
    #[inline(always)]
    unsafe fn store(p: *mut __m128i, v: __m128i) {
        // SAFETY: the caller's contract; SSE2 is part of the x86_64 baseline.
        #[cfg(not(miri))]
        unsafe {
            core::arch::x86_64::_mm_stream_si128(p, v)
        };
        // SAFETY: the caller's contract.
        #[cfg(miri)]
        unsafe {
            p.write(v)
        };
    }

    /// Copies `src` to `dst` (equally long): the 16-byte-aligned middle of `dst` with streaming
    /// stores, 64 bytes at a time, the unaligned head and tail with a plain copy.
    #[inline]
    pub(super) fn copy_streaming(dst: &mut [u8], src: &[u8]) {
        assert_eq!(dst.len(), src.len());
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        let body = (dst.len() - head) / 64 * 64;
        let (d_head, d_rest) = dst.split_at_mut(head);
        let (s_head, s_rest) = src.split_at(head);
        d_head.copy_from_slice(s_head);
        let (d_body, d_tail) = d_rest.split_at_mut(body);
        let (s_body, s_tail) = s_rest.split_at(body);
        for (d, s) in d_body.chunks_exact_mut(64).zip(s_body.chunks_exact(64)) {
            let d = d.as_mut_ptr().cast::<__m128i>();
            let s = s.as_ptr().cast::<__m128i>();
            // SAFETY: `d` and `s` point to 64 bytes each (the chunks), `d` is 16-byte aligned
            // (it starts `head + 64k` bytes into `dst`, and `dst + head` is aligned), loads are
            // unaligned, and SSE2 is part of the x86_64 baseline. The chunks do not overlap
            // (`&mut` and `&` slices).
            unsafe {
                store(d, _mm_loadu_si128(s));
                store(d.add(1), _mm_loadu_si128(s.add(1)));
                store(d.add(2), _mm_loadu_si128(s.add(2)));
                store(d.add(3), _mm_loadu_si128(s.add(3)));
            }
        }
        d_tail.copy_from_slice(s_tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment of the destination and source, lengths around the 64-byte steps.
    #[test]
    fn streaming_copy_equals_copy() {
        let src: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for stream in [false, true] {
            for len in [0, 1, 63, 255, 256, 257, 320, 511, 512, 600] {
                for (d_off, s_off) in [(0, 0), (1, 0), (0, 1), (7, 13), (15, 15), (16, 3)] {
                    let mut dst = vec![0xeeu8; 700];
                    let mut st = Streamer::new(stream);
                    st.copy(&mut dst[d_off..d_off + len], &src[s_off..s_off + len]);
                    st.finish();
                    assert_eq!(dst[d_off..d_off + len], src[s_off..s_off + len]);
                    assert!(dst[..d_off].iter().all(|&b| b == 0xee));
                    assert!(dst[d_off + len..].iter().all(|&b| b == 0xee));
                }
            }
        }
    }
}
