//! The staging area: decompressed output kept for the apply pass, so it copies instead of
//! decompressing a second time.
//!
//! It holds the output of a prefix of the frame's coded ops, in op order, and the apply pass
//! takes them back in the same order; once one does not fit, the area is closed for the rest of
//! the frame and those ops are decompressed by both passes. Who fills it depends on the payload:
//!
//! - a plain payload: the validate pass, as it decompresses each op that carries compressed
//!   data (COMPRESSED, and BLOCKS with coded literals) into a [`slot`](Stage::slot);
//! - an entropy-coded payload: the entropy stage's join, which decodes every lz4 block it
//!   rebuilds (DICT ops too) through [`Staging`] before the validate pass starts; the validate
//!   pass then asks whether each coded op is [`filled`](Stage::filled), and [`cut`](Stage::cut)s
//!   the area at a DICT op whose dictionary this frame changed before it. The join leaves the
//!   bytes of a block it keeps here out of the rebuilt payload (see
//!   [`Staging::skip_body`]): a kept op that loses its slot (a cut, or a slot of another shape)
//!   then has no body to decode, which [`bodies_lost`](Stage::bodies_lost) tells, and the frame
//!   decoder joins the payload again with every body written
//!   ([`keep_bodies`](Stage::keep_bodies)).

use crate::entropy::Staging;

/// Bytes the validation pass may keep of decompressed data, so the apply pass copies instead of
/// decompressing again. Fixed: a frame with more compressed output decompresses the rest twice.
pub const STAGE_BYTES: usize = 16 << 20;

/// The shortest output a coded op has (a BLOCKS op's literals: one block of 64 bytes or more):
/// bounds how many slots an area of a given size holds.
const MIN_SLOT: usize = 64;

/// Decompressed output kept for the apply pass, for a prefix of the frame's ops that carry
/// compressed data (in op order).
#[derive(Debug)]
pub(super) struct Stage {
    buf: Vec<u8>,
    /// Bytes the area may hold (at most [`STAGE_BYTES`]).
    cap: usize,
    used: usize,
    /// Slots given.
    ops: usize,
    closed: bool,
    /// Filled by the entropy stage's join (which also keeps DICT ops' output).
    joined: bool,
    /// With `joined`: each slot's length, twice, plus one when it has a dictionary.
    slots: Vec<u32>,
    /// With `joined`: coded ops the validate pass has asked about.
    checked: usize,
    /// With `joined`: whether the join may leave kept blocks out of the payload, and whether
    /// it did.
    may_skip: bool,
    skipped: bool,
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
            joined: false,
            slots: Vec::new(),
            checked: 0,
            may_skip: false,
            skipped: false,
            read_ops: 0,
            read: 0,
        }
    }
}

impl Stage {
    /// An area of at most `cap` bytes (and [`STAGE_BYTES`]), allocated now.
    pub(super) fn reserved(cap: usize) -> Result<Stage, crate::Error> {
        let cap = cap.min(STAGE_BYTES);
        let mut slots = Vec::new();
        crate::budget::grow_to(&mut slots, cap / MIN_SLOT, "the decoder's staging area")?;
        Ok(Stage {
            buf: crate::budget::filled(cap, 0, "the decoder's staging area")?,
            cap,
            slots,
            ..Stage::default()
        })
    }

    /// Empties the area for a new frame, to be filled by the entropy stage's join (`joined`,
    /// which may then leave the blocks it keeps here out of the payload) or by the validate
    /// pass.
    pub(super) fn reset(&mut self, joined: bool) {
        (self.used, self.ops, self.closed, self.read_ops, self.read) = (0, 0, false, 0, 0);
        (self.joined, self.checked) = (joined, 0);
        (self.may_skip, self.skipped) = (joined, false);
        self.slots.clear();
    }

    /// Empties the area for the frame's join to fill again, this time writing every block into
    /// the payload (after [`bodies_lost`](Self::bodies_lost)).
    pub(super) fn keep_bodies(&mut self) {
        self.reset(true);
        self.may_skip = false;
    }

    /// Validation of a joined frame: whether an op the join kept here, its bytes left out of
    /// the payload, has lost its slot since (a [`cut`](Self::cut), or a slot of another
    /// shape): its body would then be read from the payload, where it is not.
    pub(super) fn bodies_lost(&self) -> bool {
        self.skipped && self.ops < self.slots.len()
    }

    /// Whether the entropy stage's join filled the area (then DICT ops are staged too).
    pub(super) fn joined(&self) -> bool {
        self.joined
    }

    /// Room for the next op's `len` decompressed bytes, or `None` once full.
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

    /// Validation of a joined frame: whether the next coded op's output (`len` bytes; `dict`:
    /// a DICT op) is here, decoded and checked by the join. Every coded op is asked about, in
    /// op order. A slot of another shape (the join and the op reader disagreeing) is not
    /// trusted: the area is cut there.
    pub(super) fn filled(&mut self, len: usize, dict: bool) -> bool {
        let i = self.checked;
        self.checked += 1;
        if i >= self.ops {
            return false;
        }
        if self.slots[i] as usize != 2 * len + dict as usize {
            (self.ops, self.closed) = (i, true);
            return false;
        }
        true
    }

    /// Validation of a joined frame: the output of the op just asked about, and of every later
    /// one, is not to be used (a DICT op whose page this frame wrote before: the join decoded it
    /// against the page as it was before the frame).
    pub(super) fn cut(&mut self) {
        self.ops = self.ops.min(self.checked.saturating_sub(1));
        self.closed = true;
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
        self.buf.capacity() + 4 * self.slots.capacity()
    }
}

impl Staging for Stage {
    fn slot(&mut self, len: usize, dict: bool) -> Option<&mut [u8]> {
        // one code per slot: grown as slots are (doubling), never past what the cap holds
        let (n, most) = (self.slots.len(), self.cap / MIN_SLOT);
        let full = n >= most
            || n == self.slots.capacity()
                && self
                    .slots
                    .try_reserve_exact(n.max(64).min(most - n))
                    .is_err();
        let code = match u32::try_from(2 * len + dict as usize) {
            Ok(code) if !full => code,
            _ => {
                self.closed = true;
                return None;
            }
        };
        Stage::slot(self, len)?;
        self.slots.push(code);
        // (borrowed again: the slot just given is the last `len` bytes used)
        Some(&mut self.buf[self.used - len..self.used])
    }

    fn skip_body(&mut self) -> bool {
        self.skipped |= self.may_skip;
        self.may_skip
    }

    fn drop_last(&mut self) {
        if let Some(code) = self.slots.pop() {
            self.used -= code as usize / 2;
            self.ops -= 1;
        }
        self.closed = true;
    }

    fn close(&mut self) {
        self.closed = true;
    }
}
