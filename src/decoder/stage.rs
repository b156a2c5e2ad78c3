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
#[derive(Debug, Default)]
pub(super) struct Stage {
    buf: Vec<u8>,
    used: usize,
    ops: usize,
    closed: bool,
    read_ops: usize,
    read: usize,
}

impl Stage {
    /// Empties the area for a new frame.
    pub(super) fn reset(&mut self) {
        (self.used, self.ops, self.closed, self.read_ops, self.read) = (0, 0, false, 0, 0);
    }
    /// Validation: room for the next op's `len` decompressed bytes, or `None` once full.
    pub(super) fn slot(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.closed || self.used + len > STAGE_BYTES {
            self.closed = true;
            return None;
        }
        // grows to the largest frame's need (never past STAGE_BYTES), then stays
        if self.buf.len() < self.used + len {
            self.buf.resize(self.used + len, 0);
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
