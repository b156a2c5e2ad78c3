//! [`assign`](super::assign) for whatever instruction set the caller was compiled for.

/// [`assign`](super::assign) for whatever instruction set the caller was compiled for.
#[inline(always)]
pub(crate) fn assign_in(
    fcounts: &[[f32; 256]],
    costs: &[[f32; 256]],
    stale: &[bool],
    dots: &mut [f32],
    choice: &mut [u8],
) {
    let k = costs.len();
    let mut todo = [0u8; super::MAX_TABLES];
    let mut n = 0;
    for (j, _) in stale.iter().enumerate().filter(|(_, &s)| s) {
        todo[n] = j as u8;
        n += 1;
    }
    let todo = &todo[..n];
    // the bits of each context under each stale table, four dot products in flight: four
    // tables a context, or with fewer tables than that, four contexts a table
    if n >= 4 {
        for (h, bits) in fcounts.iter().zip(dots.chunks_exact_mut(k)) {
            let mut quads = todo.chunks_exact(4);
            for q in &mut quads {
                let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(usize::from);
                let four = dot4(h, [&costs[a], &costs[b], &costs[c], &costs[d]]);
                [bits[a], bits[b], bits[c], bits[d]] = four;
            }
            for &j in quads.remainder() {
                bits[j as usize] = dot(h, &costs[j as usize]);
            }
        }
    } else {
        let mut quads = fcounts.chunks_exact(4);
        let mut i = 0;
        for q in &mut quads {
            for &j in todo {
                let j = j as usize;
                let four = dot4(&costs[j], [&q[0], &q[1], &q[2], &q[3]]);
                for (t, b) in four.into_iter().enumerate() {
                    dots[(i + t) * k + j] = b;
                }
            }
            i += 4;
        }
        for (t, h) in quads.remainder().iter().enumerate() {
            for &j in todo {
                dots[(i + t) * k + j as usize] = dot(h, &costs[j as usize]);
            }
        }
    }
    for (bits, out) in dots.chunks_exact(k).zip(choice) {
        let mut best = (f32::INFINITY, 0u8);
        for (j, &b) in bits.iter().enumerate() {
            if b < best.0 {
                best = (b, j as u8);
            }
        }
        *out = best.1;
    }
}

/// [`dot`] of `a` with four rows at once (the same lanes and order for each, and `x * y` is
/// `y * x`, so the same results): four independent sums keep the adders busy where one waits
/// on itself.
#[inline(always)]
fn dot4(a: &[f32; 256], rows: [&[f32; 256]; 4]) -> [f32; 4] {
    let [r0, r1, r2, r3] = rows;
    let mut lanes = [[0f32; 16]; 4];
    for c in (0..256).step_by(16) {
        let x: &[f32; 16] = a[c..c + 16].try_into().unwrap();
        let y0: &[f32; 16] = r0[c..c + 16].try_into().unwrap();
        let y1: &[f32; 16] = r1[c..c + 16].try_into().unwrap();
        let y2: &[f32; 16] = r2[c..c + 16].try_into().unwrap();
        let y3: &[f32; 16] = r3[c..c + 16].try_into().unwrap();
        for i in 0..16 {
            lanes[0][i] += x[i] * y0[i];
            lanes[1][i] += x[i] * y1[i];
            lanes[2][i] += x[i] * y2[i];
            lanes[3][i] += x[i] * y3[i];
        }
    }
    lanes.map(|l| l.iter().sum())
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
