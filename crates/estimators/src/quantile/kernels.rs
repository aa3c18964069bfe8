//! Row and column kernels of the quantile-regression solvers, compiled for AVX2 as well as the
//! baseline and chosen at run time.
//!
//! Owns: the products `X v`, `X' v` and `X' W X` over a design held as padded rows and as
//! columns ([`Layout`]), in the exact summation order of the plain loops they replace: every
//! `X v` entry sums over columns in column order from `-0.0` (as `Iterator::sum`), every `X' v`
//! entry and every cell of `X' W X` over rows in row order. Rust never fuses a multiply and an
//! add, so each path gives the same bits on every CPU; the kernels only spread independent sums
//! across SIMD lanes.
//! Deliberately does not own: any solver, or the row-major [`Design`] itself.

use faer::Mat;

use super::design::Design;

/// The design twice, for the passes of an interior point: rows padded with zeros to `stride`
/// (a multiple of [`LANES`]) for `X' v` and `X' W X`, and columns for `X v`; or, when every row
/// is mostly zeros (a pooled regression with fixed-effect dummies), only the non-zeros of each
/// row ([`SparseRows`]), so each pass costs the non-zeros instead of `n x k`.
pub(super) struct Layout {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) stride: usize,
    rows: Vec<f64>,
    cols: Vec<f64>,
    /// Every row is dense enough for the grouped `X' W X` (see [`accumulate_lower`]).
    dense: bool,
    /// Every row is sparse: the passes take only its non-zeros.
    sparse: Option<SparseRows>,
}

impl Layout {
    pub(super) fn new(design: &Design) -> Self {
        let (n, k) = (design.n, design.k);
        let stride = k.next_multiple_of(LANES);
        if let Some(sparse) = SparseRows::of(design) {
            return Self {
                n,
                k,
                stride,
                rows: Vec::new(),
                cols: Vec::new(),
                dense: false,
                sparse: Some(sparse),
            };
        }
        let mut rows = vec![0.0; n * stride];
        let mut cols = vec![0.0; n * k];
        let mut dense = true;
        for (i, row) in design.data.chunks_exact(k.max(1)).enumerate().take(n) {
            rows[i * stride..i * stride + k].copy_from_slice(row);
            for (j, &x) in row.iter().enumerate() {
                cols[j * n + i] = x;
            }
            dense &= row.iter().filter(|&&x| x != 0.0).count() * 4 > k;
        }
        Self {
            n,
            k,
            stride,
            rows,
            cols,
            dense,
            sparse: None,
        }
    }

    /// `X v` into `out` (as `design::x_times`).
    pub(super) fn x_times(&self, v: &[f64], out: &mut [f64]) {
        match &self.sparse {
            Some(sparse) => sparse.x_times(self.k, v, out),
            None => x_times_cols(&self.cols, self.n, v, out),
        }
    }

    /// `X' v` (as `design::xt_times`).
    pub(super) fn xt_times(&self, v: &[f64]) -> Vec<f64> {
        if let Some(sparse) = &self.sparse {
            return sparse.xt_times(self.k, v);
        }
        let mut acc = vec![[0.0; LANES]; self.stride / LANES];
        xt_times_rows(&self.rows, self.stride, v, &mut acc);
        acc.into_iter().flatten().take(self.k).collect()
    }

    /// `X' W X` (as `design::weighted_cross_product`).
    pub(super) fn weighted_cross_product(&self, design: &Design, weights: &[f64]) -> Mat<f64> {
        if let Some(sparse) = &self.sparse {
            return sparse.weighted_cross_product(self.k, weights);
        }
        if !self.dense {
            return super::design::weighted_cross_product(design, weights);
        }
        let mut acc = vec![0.0; self.k * self.stride];
        dense_lower(&self.rows, self.k, weights, &mut acc);
        lower_to_mat(&acc, self.k)
    }
}

/// The entries other than `+0.0` of every row of a design whose rows are all mostly zeros (at most a quarter of
/// the columns, the rule by which [`accumulate_lower`] treats a row as sparse), row after row in
/// column order.
///
/// Every product sums the same non-zero terms in the same order as the dense loop; the exact
/// zeros it skips never change a bit: a sum that starts at `+0.0` stays what it is when `±0.0`
/// is added, and one that starts at `-0.0` (`X v`, as `Iterator::sum`) can differ only when
/// it ends at `-0.0` where the dense sum ends at `+0.0`; such a row is summed densely again.
pub(super) struct SparseRows {
    /// Row `i`'s non-zeros are at `starts[i]..starts[i + 1]`.
    starts: Vec<usize>,
    cols: Vec<usize>,
    values: Vec<f64>,
}

impl SparseRows {
    /// `None` unless every row has at most `k / 4` non-zeros.
    pub(super) fn of(design: &Design) -> Option<Self> {
        let k = design.k;
        if k == 0 || design.n == 0 {
            return None;
        }
        let mut starts = Vec::with_capacity(design.n + 1);
        let (mut cols, mut values) = (Vec::new(), Vec::new());
        starts.push(0);
        for row in design.data.chunks_exact(k).take(design.n) {
            if row.iter().filter(|&&x| x != 0.0).count() * 4 > k {
                return None;
            }
            // A `-0.0` is kept: the dense sum a row of `X v` falls back to needs it.
            for (j, &x) in row.iter().enumerate() {
                if x.to_bits() != 0 {
                    cols.push(j);
                    values.push(x);
                }
            }
            starts.push(cols.len());
        }
        Some(Self {
            starts,
            cols,
            values,
        })
    }

    fn row(&self, i: usize) -> (&[usize], &[f64]) {
        let span = self.starts[i]..self.starts[i + 1];
        (&self.cols[span.clone()], &self.values[span])
    }

    fn x_times(&self, k: usize, v: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate().take(self.starts.len() - 1) {
            let (cols, values) = self.row(i);
            let mut acc = -0.0;
            for (&j, &x) in cols.iter().zip(values) {
                acc += x * v[j];
            }
            if acc == 0.0 && acc.is_sign_negative() {
                let mut dense = vec![0.0; k];
                cols.iter().zip(values).for_each(|(&j, &x)| dense[j] = x);
                acc = dense.iter().zip(v).map(|(x, vj)| x * vj).sum();
            }
            *o = acc;
        }
    }

    fn xt_times(&self, k: usize, v: &[f64]) -> Vec<f64> {
        let mut acc = vec![0.0; k];
        for (i, &vi) in v.iter().enumerate().take(self.starts.len() - 1) {
            let (cols, values) = self.row(i);
            for (&j, &x) in cols.iter().zip(values) {
                acc[j] += x * vi;
            }
        }
        acc
    }

    /// As the sparse rows of [`accumulate_lower`]: `(w_i x_ia) x_ib` into cell `(a, b)`, `b <= a`.
    fn weighted_cross_product(&self, k: usize, weights: &[f64]) -> Mat<f64> {
        let stride = k.next_multiple_of(LANES);
        let mut acc = vec![0.0; k * stride];
        for (i, &wi) in weights.iter().enumerate().take(self.starts.len() - 1) {
            let (cols, values) = self.row(i);
            for (ia, (&a, &xa)) in cols.iter().zip(values).enumerate() {
                let ra = wi * xa;
                for (&b, &xb) in cols[..=ia].iter().zip(values) {
                    acc[a * stride + b] += ra * xb;
                }
            }
        }
        lower_to_mat(&acc, k)
    }
}

/// `x_i' v` of every row of the row-major `data` (`k` columns) into `out`, each summed over the
/// columns in order from `-0.0` (as `design::dot`). Four rows run side by side, so four
/// independent chains of additions are in flight instead of one.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(super) fn row_dots(data: &[f64], k: usize, v: &[f64], out: &mut [f64]) {
    let groups = out.len() / 4;
    for (g, o) in out.chunks_exact_mut(4).enumerate() {
        o.copy_from_slice(&dots4(&data[g * 4 * k..(g + 1) * 4 * k], k, v));
    }
    for (i, o) in out.iter_mut().enumerate().skip(groups * 4) {
        *o = data[i * k..(i + 1) * k]
            .iter()
            .zip(v)
            .map(|(x, b)| x * b)
            .sum();
    }
}

/// The dot products of four consecutive rows (`rows` holds exactly four) with `v`, each as
/// `design::dot` sums them.
#[inline(always)]
pub(super) fn dots4(rows: &[f64], k: usize, v: &[f64]) -> [f64; 4] {
    let mut acc = [-0.0; 4];
    for (j, &vj) in v.iter().enumerate().take(k) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += rows[l * k + j] * vj;
        }
    }
    acc
}

/// The symmetric matrix whose lower triangle is `acc` (row `a` at `acc[a * stride..]`).
pub(super) fn lower_to_mat(acc: &[f64], k: usize) -> Mat<f64> {
    let stride = k.next_multiple_of(LANES);
    Mat::from_fn(k, k, |a, b| acc[a.max(b) * stride + a.min(b)])
}

#[multiversion::multiversion(targets("x86_64+avx2"))]
fn x_times_cols(cols: &[f64], n: usize, v: &[f64], out: &mut [f64]) {
    let out = &mut out[..n];
    out.fill(-0.0);
    for (col, &vj) in cols.chunks_exact(n.max(1)).zip(v) {
        for (o, &x) in out.iter_mut().zip(col) {
            *o += x * vj;
        }
    }
}

#[multiversion::multiversion(targets("x86_64+avx2"))]
fn xt_times_rows(rows: &[f64], stride: usize, v: &[f64], acc: &mut [[f64; LANES]]) {
    let (chunks, _) = rows.as_chunks::<LANES>();
    let per_row = stride / LANES;
    // Chunk by chunk over blocks of rows, so each chunk's sum stays in a register.
    const BLOCK: usize = 256;
    for (block, vs) in chunks.chunks(BLOCK * per_row).zip(v.chunks(BLOCK)) {
        for (c, a) in acc.iter_mut().enumerate() {
            let mut sum = *a;
            for (row, &vi) in block.chunks_exact(per_row).zip(vs) {
                sum = std::array::from_fn(|l| sum[l] + row[c][l] * vi);
            }
            *a = sum;
        }
    }
}

/// [`accumulate_lower`] for padded rows that are all dense. The chunks of the triangle are taken
/// a few at a time ([`TILE`]), each held in a register over a block of rows, so the cells are
/// not loaded and stored for every row; every cell still adds its terms in row order.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn dense_lower(rows: &[f64], k: usize, weights: &[f64], acc: &mut [f64]) {
    const BLOCK: usize = 128;
    let stride = k.next_multiple_of(LANES);
    let per_row = stride / LANES;
    // (row a of the triangle, chunk c of that row) for every chunk holding a cell b <= a.
    let cells: Vec<(usize, usize)> = (0..k)
        .flat_map(|a| (0..(a + 1).div_ceil(LANES)).map(move |c| (a, c)))
        .collect();
    // `scaled[a * BLOCK + i]` = `w_i x_ia` for the rows of the block.
    let mut scaled = vec![0.0; k * BLOCK];
    let (x_chunks, _) = rows.as_chunks::<LANES>();
    let (acc_chunks, _) = acc.as_chunks_mut::<LANES>();
    for (block, w) in weights.chunks(BLOCK).enumerate() {
        let first = block * BLOCK;
        for a in 0..k {
            for (i, &wi) in w.iter().enumerate() {
                scaled[a * BLOCK + i] = wi * rows[(first + i) * stride + a];
            }
        }
        let xs = &x_chunks[first * per_row..(first + w.len()) * per_row];
        for tile in cells.chunks(TILE) {
            // A short last tile repeats its first chunk; the repeats are not stored.
            let at: [(usize, usize); TILE] = std::array::from_fn(|q| tile[q.min(tile.len() - 1)]);
            let mut sums: [[f64; LANES]; TILE] =
                std::array::from_fn(|q| acc_chunks[at[q].0 * per_row + at[q].1]);
            for (i, x) in xs.chunks_exact(per_row).enumerate() {
                for q in 0..TILE {
                    let (a, c) = at[q];
                    let r = scaled[a * BLOCK + i];
                    sums[q] = std::array::from_fn(|l| sums[q][l] + r * x[c][l]);
                }
            }
            for (q, &(a, c)) in tile.iter().enumerate() {
                acc_chunks[a * per_row + c] = sums[q];
            }
        }
    }
}

/// Chunks of `X' W X` held in registers at once by [`dense_lower`].
const TILE: usize = 6;

/// Width of the fixed-size chunks the row kernels work in: one AVX2 register of `f64`.
pub(super) const LANES: usize = 4;

/// Adds `w_i x_i x_i'` of every row to the lower triangle of `acc` (row `a` of the triangle at
/// `acc[a * stride..]`, `stride` = `k` rounded up to [`LANES`]).
///
/// Every cell sums its terms in row order, each term `(w_i x_ia) x_ib`, so the result is the
/// same whichever instruction set runs it (Rust never fuses a multiply and an add). Dense rows
/// update row `a` of the triangle in whole chunks of [`LANES`] cells, so the cells right of the
/// diagonal of a chunk get sums too, which are never read. Rows with many zeros (fixed-effect
/// dummies in a pooled regression: two non-zeros among hundreds of columns) only touch the
/// cells of their non-zero pairs; skipping exact zeros leaves every sum unchanged.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(super) fn accumulate_lower(data: &[f64], k: usize, weights: &[f64], acc: &mut [f64]) {
    let stride = k.next_multiple_of(LANES);
    // Up to `GROUP` dense rows are added together: each chunk of cells is loaded once, gets the
    // rows' terms one after the other (still in row order), and is stored once.
    const GROUP: usize = 4;
    let mut padded = vec![0.0; GROUP * stride];
    let mut scaled = vec![0.0; GROUP * k];
    let mut grouped = 0;
    let mut nz: Vec<usize> = Vec::with_capacity(k);
    let rows = data.chunks_exact(k).zip(weights);
    let n = weights.len().min(data.len() / k.max(1));
    for (i, (row, &wi)) in rows.enumerate() {
        let nonzero = row.iter().filter(|&&x| x != 0.0).count();
        if nonzero * 4 > k {
            padded[grouped * stride..grouped * stride + k].copy_from_slice(row);
            for (r, &x) in scaled[grouped * k..(grouped + 1) * k].iter_mut().zip(row) {
                *r = wi * x;
            }
            grouped += 1;
            if grouped == GROUP || i + 1 == n {
                add_dense_group(&padded, &scaled, grouped, k, acc);
                grouped = 0;
            }
            continue;
        }
        // A sparse row comes after the dense rows before it.
        if grouped > 0 {
            add_dense_group(&padded, &scaled, grouped, k, acc);
            grouped = 0;
        }
        nz.clear();
        nz.extend((0..k).filter(|&a| row[a] != 0.0));
        for (ia, &a) in nz.iter().enumerate() {
            let ra = wi * row[a];
            for &b in &nz[..=ia] {
                acc[a * stride + b] += ra * row[b];
            }
        }
    }
}

/// Adds the first `count` rows of `padded` (each `stride` long, zero beyond `k`), with
/// `scaled[g * k + a]` = `w_g x_ga`, to the triangle in `acc`, row after row in every cell.
#[inline(always)]
pub(super) fn add_dense_group(
    padded: &[f64],
    scaled: &[f64],
    count: usize,
    k: usize,
    acc: &mut [f64],
) {
    let stride = k.next_multiple_of(LANES);
    let (x_chunks, _) = padded.as_chunks::<LANES>();
    let per_row = stride / LANES;
    for (a, acc_row) in acc.chunks_exact_mut(stride).enumerate() {
        let used = (a + 1).div_ceil(LANES);
        let (cells, _) = acc_row.as_chunks_mut::<LANES>();
        if count == 4 {
            let (r0, r1, r2, r3) = (
                scaled[a],
                scaled[k + a],
                scaled[2 * k + a],
                scaled[3 * k + a],
            );
            for (c, cell) in cells[..used].iter_mut().enumerate() {
                let (x0, x1) = (&x_chunks[c], &x_chunks[per_row + c]);
                let (x2, x3) = (&x_chunks[2 * per_row + c], &x_chunks[3 * per_row + c]);
                let mut v = *cell;
                for (ra, x) in [(r0, x0), (r1, x1), (r2, x2), (r3, x3)] {
                    v = std::array::from_fn(|l| v[l] + ra * x[l]);
                }
                *cell = v;
            }
            continue;
        }
        for g in 0..count {
            let ra = scaled[g * k + a];
            for (c, cell) in cells[..used].iter_mut().enumerate() {
                let x = &x_chunks[g * per_row + c];
                for l in 0..LANES {
                    cell[l] += ra * x[l];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile::design::{dot, weighted_cross_product};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// Every product equals the plain loop's bit for bit: `X v` and the row dots as `dot`
        /// row by row, `X' v` summed row after row from `0.0`, `X' W X` as the one-row-at-a-time
        /// kernel; any `k` (chunks padded) and `n` across several blocks of rows.
        #[test]
        fn layout_products_equal_the_plain_loops(
            k in 1usize..14,
            n in 0usize..400,
            values in proptest::collection::vec(-5.0f64..5.0, 997),
            zeros in proptest::collection::vec(0.0f64..1.0, 991),
            sparsity in prop_oneof![Just(0.0), 0.0f64..1.0, Just(0.97)],
        ) {
            // From dense to rows of dummies (then the layout keeps only the non-zeros), with
            // some `-0.0` so that sums of zeros end at either sign.
            let data: Vec<f64> = (0..n * k)
                .map(|c| match zeros[c % 991] {
                    z if z < sparsity * 0.9 => 0.0,
                    z if z < sparsity => -0.0,
                    _ => values[c % 997],
                })
                .collect();
            let v: Vec<f64> = (0..n).map(|i| values[(3 * i + 1) % 997]).collect();
            let b: Vec<f64> = (0..k).map(|j| values[(11 * j + 5) % 997]).collect();
            let design = Design { n, k, data };
            let layout = Layout::new(&design);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();

            let plain_xb: Vec<f64> = (0..n).map(|i| dot(design.row(i), &b)).collect();
            let mut xb = vec![0.0; n];
            layout.x_times(&b, &mut xb);
            prop_assert_eq!(bits(&xb), bits(&plain_xb));
            row_dots(&design.data, k, &b, &mut xb);
            prop_assert_eq!(bits(&xb), bits(&plain_xb));

            let mut plain_xtv = vec![0.0; k];
            for (i, vi) in v.iter().enumerate() {
                for (o, x) in plain_xtv.iter_mut().zip(design.row(i)) {
                    *o += x * vi;
                }
            }
            prop_assert_eq!(bits(&layout.xt_times(&v)), bits(&plain_xtv));

            let w: Vec<f64> = v.iter().map(|x| x.abs()).collect();
            let plain = weighted_cross_product(&design, &w);
            let got = layout.weighted_cross_product(&design, &w);
            for a in 0..k {
                for c in 0..k {
                    prop_assert_eq!(got[(a, c)].to_bits(), plain[(a, c)].to_bits());
                }
            }
        }
    }
}
