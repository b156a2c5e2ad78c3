//! Why an entropy-coded payload was refused.

use super::huffman::HuffmanError;

/// Why an entropy-coded payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyError {
    /// The stream headers are malformed or their lengths do not fit the payload.
    Container(&'static str),
    /// A stream's code table or coded bits are invalid.
    Huffman(HuffmanError),
    /// The streams do not form a payload of whole ops.
    Streams(&'static str),
}

impl std::fmt::Display for EntropyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntropyError::Container(w) => write!(f, "entropy container: {w}"),
            EntropyError::Huffman(e) => write!(f, "entropy stream: {e}"),
            EntropyError::Streams(w) => write!(f, "entropy streams: {w}"),
        }
    }
}
