//! Test data: bytes of xorshift64 output, the same for the same seed (incompressible, and so
//! sent RAW by the encoder).

/// `len` bytes of xorshift64 output from `seed` (0 is taken as 1).
pub(crate) fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
