//! The staging area: decompressed output the validate pass keeps so the apply pass copies it
//! instead of decompressing a second time.
//!
//! The validate pass asks for a slot for each op that carries compressed data, in op order; the
//! apply pass takes them back in the same order. Once a slot does not fit, the area is closed for
//! the rest of the frame: those ops are decompressed by both passes.

/// Bytes the validation pass may keep of decompressed data, so the apply pass copies instead of
/// decompressing again. Fixed: a frame with more compressed output decompresses the rest twice.
pub const STAGE_BYTES: usize = 16 << 20;

/// Decompressed output kept from the validation pass, for a prefix of the frame's ops that carry
/// compressed data (in op order).
#[derive(Debug)]
pub(super) struct Stage {
    buf: Vec<u8>,
    /// Bytes the area may hold (at most [`STAGE_BYTES`]).
    cap: usize,
    used: usize,
    ops: usize,
    closed: bool,
    read_ops: usize,
    read: usize,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            buf: Vec::new(),
            cap: STAGE_BYTES,
            used: 0,
            ops: 0,
            closed: false,
            read_ops: 0,
            read: 0,
        }
    }
}

impl Stage {
    /// An area of at most `cap` bytes (and [`STAGE_BYTES`]), allocated now.
    pub(super) fn reserved(cap: usize) -> Result<Stage, crate::Error> {
        let cap = cap.min(STAGE_BYTES);
        Ok(Stage {
            buf: crate::budget::filled(cap, 0, "the decoder's staging area")?,
            cap,
            ..Stage::default()
        })
    }

    /// Empties the area for a new frame.
    pub(super) fn reset(&mut self) {
        (self.used, self.ops, self.closed, self.read_ops, self.read) = (0, 0, false, 0, 0);
    }
    /// Validation: room for the next op's `len` decompressed bytes, or `None` once full.
    pub(super) fn slot(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.closed || self.used + len > self.cap {
            self.closed = true;
            return None;
        }
        // grows to the largest frame's need (never past the cap), then stays; memory it cannot
        // have closes it like a full one
        let need = self.used + len;
        if self.buf.len() < need {
            if self.buf.try_reserve(need - self.buf.len()).is_err() {
                self.closed = true;
                return None;
            }
            self.buf.resize(need, 0);
        }
        let s = &mut self.buf[self.used..self.used + len];
        self.used += len;
        self.ops += 1;
        Some(s)
    }
    /// Application: the next op's staged bytes, if the validation pass kept them.
    pub(super) fn take(&mut self, len: usize) -> Option<&[u8]> {
        self.read_ops += 1;
        if self.read_ops > self.ops {
            return None;
        }
        let s = &self.buf[self.read..self.read + len];
        self.read += len;
        Some(s)
    }
    /// Bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.buf.capacity()
    }
}
