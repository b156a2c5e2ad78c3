//! Errors of the encoder and the decoder.

use crate::config::ConfigError;
use crate::format::EnvelopeError;

/// Why a frame was rejected, or why an encoder call was refused.
///
/// A decoder that returns any of these has written nothing to the replica and has not changed
/// its own state: the genuine frame still applies afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are described with their variant
pub enum Error {
    /// The configuration is out of range.
    Config(ConfigError),
    /// The frame is shorter than its header, or than the length its header declares.
    Truncated { needed: usize, got: usize },
    /// The frame is longer than its header declares (trailing bytes).
    TrailingBytes { declared: usize, got: usize },
    /// The frame does not start with the magic bytes `FGBI`.
    BadMagic,
    /// The frame's format version is not one this decoder reads.
    UnsupportedVersion(u16),
    /// The header length field does not match this format version's header.
    BadHeader,
    /// The checksum over header and payload does not match: the frame was corrupted.
    ChecksumMismatch { expected: u64, actual: u64 },
    /// The frame's page size differs from the decoder's.
    PageSizeMismatch { frame: u32, config: u32 },
    /// The frame's block size differs from the decoder's.
    BlockSizeMismatch { frame: u32, config: u32 },
    /// The frame sets flag bits this version does not define.
    UnknownFlags(u32),
    /// The decoder has not been synchronised: the first frame it applies must be a resync frame.
    NotSynchronized { epoch: u64 },
    /// The frame belongs to another stream (another encoder or channel).
    ForeignStream { expected: u64, got: u64 },
    /// The frame's epoch was already applied (a replayed, duplicated or reordered frame).
    EpochReplayed { last: u64, got: u64 },
    /// One or more epochs are missing between the last applied frame and this one.
    EpochGap { expected: u64, got: u64 },
    /// A part of an epoch sent in parts is missing, repeated or out of order: the frame of
    /// `epoch` carries part `got` where part `expected` was due.
    PartOutOfOrder { epoch: u64, expected: u64, got: u64 },
    /// An op is malformed (unknown kind, bad length, invalid coded data); `op` is its index.
    CorruptOp { op: u32, what: &'static str },
    /// An op addresses a page outside the replica.
    OutOfBounds { op: u32, addr: u64 },
    /// An op depends on a page the backup was never sent since the last resync.
    UnknownPage { op: u32, addr: u64 },
    /// The header's op count does not match the ops in the payload.
    OpCountMismatch { declared: u32, found: u32 },
    /// The entropy-coded payload is malformed.
    Entropy(crate::entropy::EntropyError),
    /// An encoder call made out of order (e.g. add_page outside an epoch).
    State(&'static str),
    /// The epoch number given to the encoder is not the next one.
    EpochOrder { last: u64, got: u64 },
    /// A guest address that is not a multiple of the page size.
    Unaligned(u64),
    /// A page buffer whose length is not the page size.
    PageLength { expected: usize, got: usize },
    /// A range of guest memory whose length is not a multiple of the page size.
    RangeLength(u64),
    /// Memory for `what` (`bytes` more) could not be had: at creation, the configured budgets
    /// could not be reserved; later, a buffer the configuration does not bound could not grow.
    /// The call changed nothing.
    OutOfMemory { what: &'static str, bytes: usize },
    /// The frame's payload is larger than the decoder's configuration allows
    /// ([`Config::frame_bytes`](crate::Config::frame_bytes) plus one op).
    FrameTooLarge { payload: usize, limit: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Error::*;
        match self {
            Config(e) => write!(f, "invalid configuration: {e}"),
            Truncated { needed, got } => write!(f, "frame truncated: {got} bytes, {needed} needed"),
            TrailingBytes { declared, got } => {
                write!(
                    f,
                    "frame has trailing bytes: {got} bytes, header declares {declared}"
                )
            }
            BadMagic => f.write_str("not an fgbi frame (bad magic)"),
            UnsupportedVersion(v) => write!(f, "unsupported frame format version {v}"),
            BadHeader => f.write_str("frame header length does not match its version"),
            ChecksumMismatch { expected, actual } => {
                write!(
                    f,
                    "frame checksum mismatch (stored {expected:#018x}, computed {actual:#018x})"
                )
            }
            PageSizeMismatch { frame, config } => {
                write!(
                    f,
                    "frame page size {frame} differs from the decoder's {config}"
                )
            }
            BlockSizeMismatch { frame, config } => {
                write!(
                    f,
                    "frame block size {frame} differs from the decoder's {config}"
                )
            }
            UnknownFlags(v) => write!(f, "frame sets unknown flags {v:#x}"),
            NotSynchronized { epoch } => {
                write!(
                    f,
                    "epoch {epoch}: decoder not synchronised, a resync frame must come first"
                )
            }
            ForeignStream { expected, got } => {
                write!(
                    f,
                    "frame from stream {got:#x}, decoder follows stream {expected:#x}"
                )
            }
            EpochReplayed { last, got } => {
                write!(f, "epoch {got} already applied (last applied epoch {last})")
            }
            EpochGap { expected, got } => {
                write!(f, "epoch gap: expected epoch {expected}, got {got}")
            }
            PartOutOfOrder {
                epoch,
                expected,
                got,
            } => write!(
                f,
                "epoch {epoch}: expected its part {expected}, got part {got} (a part is missing, \
                 repeated or out of order)"
            ),
            CorruptOp { op, what } => write!(f, "op {op} is corrupt: {what}"),
            OutOfBounds { op, addr } => {
                write!(f, "op {op} addresses {addr:#x}, outside the replica")
            }
            UnknownPage { op, addr } => {
                write!(
                    f,
                    "op {op} depends on page {addr:#x}, which the backup was never sent"
                )
            }
            OpCountMismatch { declared, found } => {
                write!(f, "header declares {declared} ops, payload holds {found}")
            }
            Entropy(e) => write!(f, "payload is corrupt: {e}"),
            State(what) => write!(f, "call out of order: {what}"),
            EpochOrder { last, got } => {
                write!(
                    f,
                    "epoch {got} does not follow epoch {last} (resync to restart the numbering)"
                )
            }
            Unaligned(a) => write!(f, "guest address {a:#x} is not a multiple of the page size"),
            PageLength { expected, got } => {
                write!(f, "page of {got} bytes, page size is {expected}")
            }
            OutOfMemory { what, bytes } => {
                write!(
                    f,
                    "out of memory: {bytes} more bytes for {what} could not be allocated"
                )
            }
            FrameTooLarge { payload, limit } => {
                write!(
                    f,
                    "frame payload of {payload} bytes exceeds the configured limit of {limit} \
                     (frame size plus one op)"
                )
            }
            RangeLength(n) => {
                write!(f, "range of {n} bytes is not a multiple of the page size")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<EnvelopeError> for Error {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Truncated { needed, got } => Error::Truncated { needed, got },
            EnvelopeError::TrailingBytes { declared, got } => {
                Error::TrailingBytes { declared, got }
            }
            EnvelopeError::BadMagic => Error::BadMagic,
            EnvelopeError::UnsupportedVersion(v) => Error::UnsupportedVersion(v),
            EnvelopeError::BadHeader => Error::BadHeader,
            EnvelopeError::ChecksumMismatch { expected, actual } => {
                Error::ChecksumMismatch { expected, actual }
            }
            EnvelopeError::UnknownFlags(v) => Error::UnknownFlags(v),
        }
    }
}

/// The same message as the crate error it becomes.
impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Error::from(*self).fmt(f)
    }
}

impl std::error::Error for EnvelopeError {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
