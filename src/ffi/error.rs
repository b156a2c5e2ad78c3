//! Status codes, the per-thread last error message and the panic boundary.

use crate::Error;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const FGBI_OK: c_int = 0;
/// A required pointer argument (handle, output pointer, or buffer with a non-zero length) is NULL.
pub const FGBI_ERR_NULL: c_int = -1;
/// An argument is out of range: a buffer of the wrong length (e.g. a short page), a guest address
/// that is not a multiple of the page size, an unknown codec or stage bit, overlapping buffers.
pub const FGBI_ERR_INVALID_ARG: c_int = -2;
/// A configuration value is out of range, or a frame was made with another page or block size
/// than the decoder's configuration.
pub const FGBI_ERR_CONFIG: c_int = -3;
/// A call out of order (e.g. add_page outside an epoch, begin_epoch while the previous frame
/// waits to be fetched), or a handle made unusable by an earlier internal error.
pub const FGBI_ERR_STATE: c_int = -4;
/// The frame (or coded data) is truncated or malformed: bad magic, unsupported version, trailing
/// bytes, a corrupt op, or an op that depends on a page the backup was never sent.
pub const FGBI_ERR_CORRUPT: c_int = -5;
/// The frame's checksum does not match its content: it was corrupted in transit or storage.
pub const FGBI_ERR_CHECKSUM: c_int = -6;
/// The frame's epoch does not fit the stream: a gap (a frame was lost), a replayed or duplicated
/// frame, a frame of another stream, or a first frame that is not a resync frame. On the
/// encoder: an epoch number that does not follow the last one.
pub const FGBI_ERR_EPOCH: c_int = -7;
/// The frame addresses memory the replica does not have (past `mem_len`, or a page the
/// callback answered NULL for), or a guest address beyond the encoder's range.
pub const FGBI_ERR_OUT_OF_BOUNDS: c_int = -8;
/// The caller's output buffer is too small; the needed size was stored in the length output.
pub const FGBI_ERR_BUFFER_TOO_SMALL: c_int = -9;
/// An internal error (a bug in libfgbi, caught at the boundary: no unwinding reaches C). The
/// handle involved is unusable afterwards: free it.
pub const FGBI_ERR_INTERNAL: c_int = -10;
/// Memory could not be had: at creation, the budgets the configuration names (caches, tables,
/// frame buffers) could not be reserved; later, a buffer the configuration does not bound (a
/// whole epoch's frame without `fgbi_config_set_frame_bytes`, the set of zero pages) could not
/// grow. Nothing was changed; the process was not aborted.
pub const FGBI_ERR_NO_MEMORY: c_int = -11;
/// A frame larger than the decoder's configuration allows: its payload exceeds the frame size
/// set with `fgbi_config_set_frame_bytes` plus one op. Nothing was written.
pub const FGBI_ERR_TOO_LARGE: c_int = -12;

/// A failed call: its status code and message.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: c_int,
    pub(crate) msg: String,
}

pub(crate) type FResult<T = ()> = Result<T, Fail>;

pub(crate) fn fail(code: c_int, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
    }
}

/// `FGBI_ERR_NULL` naming the argument.
pub(crate) fn null(what: &str) -> Fail {
    fail(FGBI_ERR_NULL, format!("{what} is NULL"))
}

/// The status code of a core error.
pub(crate) fn code_of(e: &Error) -> c_int {
    use Error::*;
    match e {
        Config(_) | PageSizeMismatch { .. } | BlockSizeMismatch { .. } => FGBI_ERR_CONFIG,
        Truncated { .. }
        | TrailingBytes { .. }
        | BadMagic
        | UnsupportedVersion(_)
        | BadHeader
        | UnknownFlags(_)
        | CorruptOp { .. }
        | UnknownPage { .. }
        | OpCountMismatch { .. }
        | Entropy(_) => FGBI_ERR_CORRUPT,
        ChecksumMismatch { .. } => FGBI_ERR_CHECKSUM,
        NotSynchronized { .. }
        | ForeignStream { .. }
        | EpochReplayed { .. }
        | EpochGap { .. }
        | PartOutOfOrder { .. }
        | EpochOrder { .. } => FGBI_ERR_EPOCH,
        OutOfBounds { .. } => FGBI_ERR_OUT_OF_BOUNDS,
        OutOfMemory { .. } => FGBI_ERR_NO_MEMORY,
        FrameTooLarge { .. } => FGBI_ERR_TOO_LARGE,
        State(_) => FGBI_ERR_STATE,
        Unaligned(_) | PageLength { .. } | RangeLength(_) => FGBI_ERR_INVALID_ARG,
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        fail(code_of(&e), e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(func: &str, msg: &str) {
    let text = format!("{func}: {msg}").replace('\0', " ");
    let c = CString::new(text).unwrap_or_default();
    // `try_with` fails only while the thread is being torn down: nothing to report to then.
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = c);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

/// Runs the body of entry point `func`: its error becomes a status code and the thread's last
/// error message; a panic is caught here and becomes `FGBI_ERR_INTERNAL`.
pub(crate) fn guard(func: &str, body: impl FnOnce() -> FResult) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => FGBI_OK,
        Ok(Err(f)) => {
            set_last_error(func, &f.msg);
            f.code
        }
        Err(payload) => {
            let msg = format!("internal error (panic: {})", panic_text(&*payload));
            // dropping the payload could itself panic: drop it behind a boundary of its own, and
            // only if that panics too, forget the second payload (a leak beats an unwind into C)
            if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(inner);
            }
            set_last_error(func, &msg);
            FGBI_ERR_INTERNAL
        }
    }
}

/// A handle that records whether a call on it was interrupted by a panic (then its state may be
/// inconsistent and every later call is refused).
pub(crate) trait Poison {
    fn poisoned(&mut self) -> &mut bool;
}

/// Like [`guard`], for a call on handle `h` (NULL is refused; a poisoned handle is refused).
pub(crate) fn guard_handle<H: Poison>(
    func: &str,
    what: &str,
    h: *mut H,
    body: impl FnOnce(&mut H) -> FResult,
) -> c_int {
    guard(func, || {
        // SAFETY: the caller passes NULL or a handle made by this library and not yet freed,
        // used by one thread at a time (the documented rules).
        let h = unsafe { h.as_mut() }.ok_or_else(|| null(what))?;
        if *h.poisoned() {
            return Err(fail(
                FGBI_ERR_STATE,
                format!("{what} is unusable after an internal error: free it"),
            ));
        }
        // stays set if `body` panics
        *h.poisoned() = true;
        let r = body(h);
        *h.poisoned() = false;
        r
    })
}

/// A static, readable description of status code `code` (never NULL; unknown codes get a
/// generic text).
#[no_mangle]
pub extern "C" fn fgbi_strerror(code: c_int) -> *const c_char {
    let s: &'static [u8] = match code {
        FGBI_OK => b"success\0",
        FGBI_ERR_NULL => b"NULL pointer argument\0",
        FGBI_ERR_INVALID_ARG => b"invalid argument\0",
        FGBI_ERR_CONFIG => b"invalid or mismatched configuration\0",
        FGBI_ERR_STATE => b"call out of order\0",
        FGBI_ERR_CORRUPT => b"truncated or corrupt frame\0",
        FGBI_ERR_CHECKSUM => b"frame checksum mismatch\0",
        FGBI_ERR_EPOCH => {
            b"epoch out of sequence (gap, replay, foreign stream or unsynchronised)\0"
        }
        FGBI_ERR_OUT_OF_BOUNDS => b"address out of bounds\0",
        FGBI_ERR_BUFFER_TOO_SMALL => b"buffer too small\0",
        FGBI_ERR_INTERNAL => b"internal error\0",
        FGBI_ERR_NO_MEMORY => b"out of memory\0",
        FGBI_ERR_TOO_LARGE => b"frame larger than the configured limit\0",
        _ => b"unknown fgbi status code\0",
    };
    s.as_ptr().cast()
}

/// The message of the last failed fgbi call on the calling thread: the function's name and what
/// went wrong (for frame errors the decoder's precise reason). An empty string when no call on
/// this thread has failed yet. Successful calls leave it as it was. The text stays valid until
/// the next failing fgbi call on the same thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn fgbi_last_error_message() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    LAST_ERROR
        .try_with(|l| l.borrow().as_ptr())
        .unwrap_or(EMPTY.as_ptr().cast())
}
