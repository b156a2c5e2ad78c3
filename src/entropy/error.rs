//! Why an entropy-coded payload was refused.

use super::huffman::HuffmanError;

/// Why an entropy-coded payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are described with their variant
pub enum EntropyError {
    /// The stream headers are malformed or their lengths do not fit the payload.
    Container(&'static str),
    /// A stream's code table or coded bits are invalid.
    Huffman(HuffmanError),
    /// The streams do not form a payload of whole ops.
    Streams(&'static str),
    /// The payload would be longer than the decoder's limit
    /// ([`EntropyDecoder::set_limit`](super::EntropyDecoder::set_limit)).
    TooLarge { total: usize, limit: usize },
    /// Memory for `bytes` more bytes of decoded streams could not be had.
    NoMemory { bytes: usize },
}

impl std::fmt::Display for EntropyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntropyError::Container(w) => write!(f, "entropy container: {w}"),
            EntropyError::Huffman(e) => write!(f, "entropy stream: {e}"),
            EntropyError::Streams(w) => write!(f, "entropy streams: {w}"),
            EntropyError::TooLarge { total, limit } => {
                write!(f, "entropy payload of {total} bytes, limit {limit}")
            }
            EntropyError::NoMemory { bytes } => {
                write!(f, "no memory for {bytes} more bytes of decoded streams")
            }
        }
    }
}
