//! [`assign`](super::assign) for whatever instruction set the caller was compiled for.

/// [`assign`](super::assign) for whatever instruction set the caller was compiled for.
#[inline(always)]
pub(crate) fn assign_in(fcounts: &[[f32; 256]], costs: &[[f32; 256]], choice: &mut [u8]) {
    for (h, out) in fcounts.iter().zip(choice.iter_mut()) {
        let mut best = (f32::INFINITY, 0u8);
        for (j, cost) in costs.iter().enumerate() {
            let bits = dot(h, cost);
            if bits < best.0 {
                best = (bits, j as u8);
            }
        }
        *out = best.1;
    }
}

/// `a . b` in 16 independent lanes (which the compiler vectorises; a plain float sum cannot be
/// reordered, so it would not be). The same lanes and order on every instruction set, so the
/// result is too.
#[inline(always)]
fn dot(a: &[f32; 256], b: &[f32; 256]) -> f32 {
    let mut lanes = [0f32; 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum()
}
