//! [`assign`](super::assign) compiled for AVX2.

/// [`assign`](super::assign) compiled for AVX2 (the same code: the compiler vectorises
/// its dot products 8 lanes wide).
#[target_feature(enable = "avx2")]
pub(crate) fn assign_avx2(
    fcounts: &[[f32; 256]],
    costs: &[[f32; 256]],
    stale: &[bool],
    dots: &mut [f32],
    choice: &mut [u8],
) {
    super::portable::assign_in(fcounts, costs, stale, dots, choice)
}
