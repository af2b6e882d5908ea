//! The convolution tile kernels, one set per instruction set, and the vectorised
//! `exp` their epilogues use.
//!
//! A tile is `P` output pixels of one row × one block of output channels (`NV`
//! vectors of `L` lanes). Its accumulators live in registers for the whole
//! reduction over the kernel taps and input channels; each step loads the block's
//! weights for one input channel once and broadcasts each pixel's input value.
//! The epilogue adds nothing more than what the accumulators started with (the
//! bias), applies the activation, adds the residual and stores the lanes that are
//! real channels (masked at a block's tail).
//!
//! Safety: every kernel reads `k * k` taps of `ic` channels at the pointers
//! [`Tile`] describes and writes `P` pixels of `nvalid` channels. The caller
//! ([`super::exec`]) derives those pointers from a planned [`super::plan`] layout
//! whose buffers carry a one-pixel zero border, so that every read lands inside
//! the buffer, and gives each thread disjoint output rows.

use super::Act;

/// What one tile kernel call works on (pointers into the plan's buffers and the
/// packed weights).
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// The input value under tap (0, 0) of the tile's first pixel, at its first
    /// channel.
    pub inp: *const f32,
    /// Floats between the inputs of two neighbouring output pixels.
    pub px_stride: usize,
    /// Floats between two input rows.
    pub row_stride: usize,
    /// Floats between two input pixels (the input buffer's channels).
    pub tap_stride: usize,
    /// Kernel side (1 or 3).
    pub k: usize,
    /// Input channels.
    pub ic: usize,
    /// Packed weights of the block: `[k * k][ic][NV * L]`.
    pub w: *const f32,
    /// Bias of the block, `NV * L` floats.
    pub bias: *const f32,
    /// Where the tile's first output pixel's first channel goes.
    pub out: *mut f32,
    /// Floats between two output pixels.
    pub out_stride: usize,
    /// The residual added after the activation (same layout as `out`), or null.
    pub res: *const f32,
    /// Floats between two residual pixels.
    pub res_stride: usize,
    /// Channels of the block that exist (the rest of its lanes are padding).
    pub nvalid: usize,
    /// The activation.
    pub act: Act,
}

/// A tile kernel.
pub(crate) type TileFn = unsafe fn(&Tile);

/// What a Winograd F(2×2, 3×3) input transform works on: `tiles` patches of 4×4
/// input pixels side by side (two pixels apart), each turned into 16 rows of
/// `ic` channels, `V[ξ][tile][channel]`.
#[derive(Clone, Copy)]
pub(crate) struct WinoIn {
    /// The first patch's top-left input pixel (border coordinates), first channel.
    pub inp: *const f32,
    /// Floats between two input rows.
    pub row_stride: usize,
    /// Floats between two input pixels.
    pub px_stride: usize,
    /// Input channels.
    pub ic: usize,
    /// Patches.
    pub tiles: usize,
    /// Where `V[0][0][0]` goes; `V[ξ][t][c]` is at `v + ξ * xi_stride + t * ic + c`.
    pub v: *mut f32,
    /// Floats between two of the 16 positions.
    pub xi_stride: usize,
}

/// What a Winograd F(2×2, 3×3) output transform works on: for each tile, the 16
/// rows `M[ξ][tile][channel]` (channels padded to whole vectors) become its 2×2
/// output pixels, with the bias, the activation and the residual.
#[derive(Clone, Copy)]
pub(crate) struct WinoOut {
    /// `M[0][0][0]`; `M[ξ][t][c]` is at `m + ξ * xi_stride + t * ocp + c`.
    pub m: *const f32,
    /// Floats between two of the 16 positions.
    pub xi_stride: usize,
    /// Floats between two tiles (output channels padded to whole vectors).
    pub ocp: usize,
    /// Tiles.
    pub tiles: usize,
    /// Output channels that exist (`ocp` rounded them up).
    pub oc: usize,
    /// The bias, padded to `ocp`.
    pub bias: *const f32,
    /// The first tile's top-left output pixel, first channel.
    pub out: *mut f32,
    /// Floats between two output rows.
    pub out_row_stride: usize,
    /// Floats between two output pixels.
    pub out_px_stride: usize,
    /// The residual added after the activation (same geometry as `out`), or null.
    pub res: *const f32,
    /// Floats between two residual rows.
    pub res_row_stride: usize,
    /// Floats between two residual pixels.
    pub res_px_stride: usize,
    /// The activation.
    pub act: Act,
}

/// What the box decoding of one row of anchors works on: per pixel, 4 sides ×
/// 16 distance bins (DFL: softmax, then the expectation over the bins), the box
/// written as centre x, y, width, height in input pixels.
#[derive(Clone, Copy)]
pub(crate) struct BoxRow {
    /// The row's first pixel's 64 bins.
    pub src: *const f32,
    /// Floats between two pixels' bins.
    pub px_stride: usize,
    /// Pixels in the row.
    pub w: usize,
    /// The row (its anchors' centre is at `row + 0.5`).
    pub row: usize,
    /// Where the row's first anchor's centre x goes; the other three values
    /// follow `anchors` floats apart.
    pub out: *mut f32,
    /// Floats between two output rows (the anchors of an image).
    pub anchors: usize,
    /// Pixels per cell at this level.
    pub stride: f32,
    /// The bins' values, `0, 1, …, 15` (16 floats).
    pub proj: *const f32,
}

/// A box decoding kernel.
pub(crate) type BoxRowFn = unsafe fn(&BoxRow);

/// Writes the box of pixel `x` of `b` from its four distances (left, top, right,
/// bottom, in cells).
///
/// # Safety
/// `b.out` has the four output rows of the row's anchors.
#[inline(always)]
unsafe fn store_box(b: &BoxRow, x: usize, d: [f32; 4]) {
    let (ax, ay) = (x as f32 + 0.5, b.row as f32 + 0.5);
    let (x1, y1, x2, y2) = (ax - d[0], ay - d[1], ax + d[2], ay + d[3]);
    // SAFETY: as the caller guarantees.
    unsafe {
        *b.out.add(x) = (x1 + x2) / 2.0 * b.stride;
        *b.out.add(b.anchors + x) = (y1 + y2) / 2.0 * b.stride;
        *b.out.add(2 * b.anchors + x) = (x2 - x1) * b.stride;
        *b.out.add(3 * b.anchors + x) = (y2 - y1) * b.stride;
    }
}

/// A Winograd input transform.
pub(crate) type WinoInFn = unsafe fn(&WinoIn);
/// A Winograd output transform.
pub(crate) type WinoOutFn = unsafe fn(&WinoOut);

/// `Bᵀ d B` of F(2×2, 3×3) on one 4×4 patch `d` (any element type with
/// addition and subtraction): the 16 values in row-major order.
#[inline(always)]
pub(crate) fn wino_bt<T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T>>(
    d: [[T; 4]; 4],
) -> [T; 16] {
    let row = |r: [T; 4]| [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
    let r = [row(d[0]), row(d[1]), row(d[2]), row(d[3])];
    let mut v = [r[0][0]; 16];
    for j in 0..4 {
        v[j] = r[0][j] - r[2][j];
        v[4 + j] = r[1][j] + r[2][j];
        v[8 + j] = r[2][j] - r[1][j];
        v[12 + j] = r[1][j] - r[3][j];
    }
    v
}

/// `Aᵀ m A` of F(2×2, 3×3): the 2×2 outputs of the 16 values `m` (row-major).
#[inline(always)]
pub(crate) fn wino_at<T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T>>(
    m: [T; 16],
) -> [[T; 2]; 2] {
    let row = |i: usize| {
        [
            m[4 * i] + m[4 * i + 1] + m[4 * i + 2],
            m[4 * i + 1] - m[4 * i + 2] - m[4 * i + 3],
        ]
    };
    let s = [row(0), row(1), row(2), row(3)];
    [
        [s[0][0] + s[1][0] + s[2][0], s[0][1] + s[1][1] + s[2][1]],
        [s[1][0] - s[2][0] - s[3][0], s[1][1] - s[2][1] - s[3][1]],
    ]
}

/// `e^x` of one value (the portable path; the vector kernels use Cephes'
/// polynomial on a range reduced by `ln 2`, within 2 ulp of it).
#[inline]
pub(crate) fn exp_scalar(x: f32) -> f32 {
    x.exp()
}

/// The activation of one value (portable path).
#[inline]
pub(crate) fn act_scalar(act: Act, x: f32) -> f32 {
    match act {
        Act::None => x,
        Act::Silu => x / (1.0 + exp_scalar(-x)),
        Act::Sigmoid => 1.0 / (1.0 + exp_scalar(-x)),
    }
}

// Cephes' expf constants.
const EXP_HI: f32 = 88.3;
const EXP_LO: f32 = -87.3;
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const P0: f32 = 1.987_569_1e-4;
const P1: f32 = 1.398_199_9e-3;
const P2: f32 = 8.333_452e-3;
const P3: f32 = 4.166_579_6e-2;
const P4: f32 = 1.666_666_5e-1;
const P5: f32 = 0.5;

/// Runs `$body` with `$i` bound to each constant `0, 1, …` below `$n` (a const
/// generic), up to `$max`: the indices are constants in the code the compiler
/// first sees, so arrays indexed by them become registers.
macro_rules! unroll {
    ($i:ident < $n:ident, 2, $body:block) => {
        unroll!(@ $i $n $body; 0 1)
    };
    ($i:ident < $n:ident, 24, $body:block) => {
        unroll!(@ $i $n $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23)
    };
    (@ $i:ident $n:ident $body:block; $($k:literal)*) => {
        $(
            if $k < $n {
                #[allow(clippy::identity_op, clippy::erasing_op)]
                let $i: usize = $k;
                $body
            }
        )*
    };
}

/// Generates a kernel set for one instruction set: `$v` the vector type, `$l` its
/// lanes, and the intrinsics it needs.
macro_rules! kernel_set {
    (
        mod $m:ident, feature = $feat:literal, vec = $v:ty, lanes = $l:expr,
        zero = $zero:path, set1 = $set1:path, load = $load:path, store = $store:path,
        fmadd = $fmadd:path, add = $add:path, sub = $sub:path, mul = $mul:path, div = $div:path,
        max = $max:path, min = $min:path, round = $round:expr,
        cvt = $cvt:path, slli = $slli:expr, addi = $addi:path, seti = $seti:path, cast = $cast:path,
        mask_load = $mload:expr, mask_store = $mstore:expr,
        pmax1 = $pmax1:tt, pmax2 = $pmax2:tt
    ) => {
        pub(crate) mod $m {
            #[cfg(target_arch = "x86_64")]
            use std::arch::x86_64::*;

            use super::*;

            /// Lanes of one vector.
            pub(crate) const L: usize = $l;
            /// Most pixels of a one-vector tile, of a two-vector tile.
            pub(crate) const PMAX: [usize; 2] = [$pmax1, $pmax2];

            /// `e^x` on every lane.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn exp(x: $v) -> $v {
                let x = $min($max(x, $set1(EXP_LO)), $set1(EXP_HI));
                let n = $round($mul(x, $set1(LOG2E)));
                let r = $sub($sub(x, $mul(n, $set1(LN2_HI))), $mul(n, $set1(LN2_LO)));
                let mut y = $set1(P0);
                y = $fmadd(y, r, $set1(P1));
                y = $fmadd(y, r, $set1(P2));
                y = $fmadd(y, r, $set1(P3));
                y = $fmadd(y, r, $set1(P4));
                y = $fmadd(y, r, $set1(P5));
                y = $fmadd(y, $mul(r, r), $add(r, $set1(1.0)));
                // 2^n through the exponent bits (n is in -126..=127 after the clamp).
                let e = $slli($addi($cvt(n), $seti(127)));
                $mul(y, $cast(e))
            }

            /// The activation on every lane.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn act(act: Act, x: $v) -> $v {
                match act {
                    Act::None => x,
                    Act::Silu => {
                        let e = exp($sub($zero(), x));
                        $div(x, $add($set1(1.0), e))
                    }
                    Act::Sigmoid => {
                        let e = exp($sub($zero(), x));
                        $div($set1(1.0), $add($set1(1.0), e))
                    }
                }
            }

            /// The box decoding of one row (see [`BoxRow`]): each side's 16 bins
            /// are `16 / L` vectors.
            ///
            /// # Safety
            /// What `b` describes is readable (the bins, `proj`) and writable
            /// (the output).
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn boxes(b: &BoxRow) {
                let mut lanes = [0f32; L];
                // SAFETY (whole body): as the caller guarantees; `lanes` holds L
                // floats.
                unsafe {
                    for x in 0..b.w {
                        let s = b.src.add(x * b.px_stride);
                        let mut d = [0f32; 4];
                        for (side, dv) in d.iter_mut().enumerate() {
                            let mut v = [$zero(); 16 / L];
                            let mut m = $set1(f32::NEG_INFINITY);
                            for (i, vi) in v.iter_mut().enumerate() {
                                *vi = $load(s.add(side * 16 + i * L));
                                m = $max(m, *vi);
                            }
                            $store(lanes.as_mut_ptr(), m);
                            let m = $set1(lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)));
                            let (mut sum, mut dot) = ($zero(), $zero());
                            for (i, vi) in v.iter().enumerate() {
                                let e = exp($sub(*vi, m));
                                sum = $add(sum, e);
                                dot = $fmadd(e, $load(b.proj.add(i * L)), dot);
                            }
                            $store(lanes.as_mut_ptr(), sum);
                            let sum: f32 = lanes.iter().sum();
                            $store(lanes.as_mut_ptr(), dot);
                            let dot: f32 = lanes.iter().sum();
                            *dv = dot / sum;
                        }
                        store_box(b, x, d);
                    }
                }
            }

            /// `iters` rounds of 12 independent vector multiply-adds (for
            /// measuring the machine's peak); returns a value depending on all.
            #[target_feature(enable = $feat)]
            pub(crate) fn fma_burn(iters: usize) -> f32 {
                let mut acc = [$zero(); 12];
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = $set1(i as f32 * 1e-3);
                }
                let (m, c) = ($set1(0.999_999), $set1(1e-7));
                for _ in 0..iters {
                    for a in acc.iter_mut() {
                        *a = $fmadd(*a, m, c);
                    }
                }
                let mut sum = $zero();
                for a in acc {
                    sum = $add(sum, a);
                }
                let mut lanes = [0f32; L];
                // SAFETY: `lanes` holds L floats.
                unsafe { $store(lanes.as_mut_ptr(), sum) };
                lanes.iter().sum()
            }

            /// A vector of floats that adds and subtracts with `+` and `-` (for
            /// the Winograd transforms written once for every element type).
            #[derive(Clone, Copy)]
            struct V($v);

            impl std::ops::Add for V {
                type Output = V;
                #[inline(always)]
                fn add(self, o: V) -> V {
                    // SAFETY: only reached from functions compiled with the
                    // kernel set's features, on a machine that has them.
                    V(unsafe { $add(self.0, o.0) })
                }
            }

            impl std::ops::Sub for V {
                type Output = V;
                #[inline(always)]
                fn sub(self, o: V) -> V {
                    // SAFETY: as for `add`.
                    V(unsafe { $sub(self.0, o.0) })
                }
            }

            /// The Winograd input transform (see [`WinoIn`]).
            ///
            /// # Safety
            /// The patches and the rows of `V` that `t` describes are readable and
            /// writable.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn wino_in(t: &WinoIn) {
                // SAFETY (whole body): as the caller guarantees.
                unsafe {
                    for tile in 0..t.tiles {
                        let base = t.inp.add(2 * tile * t.px_stride);
                        let dst = t.v.add(tile * t.ic);
                        let mut c0 = 0;
                        while c0 < t.ic {
                            let lanes = (t.ic - c0).min(L);
                            let mut d = [[V($zero()); 4]; 4];
                            for (i, row) in d.iter_mut().enumerate() {
                                for (j, x) in row.iter_mut().enumerate() {
                                    let p = base.add(i * t.row_stride + j * t.px_stride + c0);
                                    *x = V(if lanes == L {
                                        $load(p)
                                    } else {
                                        $mload(p, lanes)
                                    });
                                }
                            }
                            let v = wino_bt(d);
                            for (xi, x) in v.iter().enumerate() {
                                let p = dst.add(xi * t.xi_stride + c0);
                                if lanes == L {
                                    $store(p, x.0);
                                } else {
                                    $mstore(p, x.0, lanes);
                                }
                            }
                            c0 += L;
                        }
                    }
                }
            }

            /// The Winograd output transform (see [`WinoOut`]).
            ///
            /// # Safety
            /// The rows of `M`, the bias, the output pixels and the residual that
            /// `t` describes are readable (and the output writable).
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn wino_out(t: &WinoOut) {
                // SAFETY (whole body): as the caller guarantees.
                unsafe {
                    for tile in 0..t.tiles {
                        let src = t.m.add(tile * t.ocp);
                        let out = t.out.add(2 * tile * t.out_px_stride);
                        let res = t.res.wrapping_add(2 * tile * t.res_px_stride);
                        let mut c0 = 0;
                        while c0 < t.oc {
                            let lanes = (t.oc - c0).min(L);
                            let mut m = [V($zero()); 16];
                            for (xi, x) in m.iter_mut().enumerate() {
                                *x = V($load(src.add(xi * t.xi_stride + c0)));
                            }
                            let y = wino_at(m);
                            let b = $load(t.bias.add(c0));
                            for (a, yr) in y.iter().enumerate() {
                                for (bx, yv) in yr.iter().enumerate() {
                                    let mut o = act(t.act, $add(yv.0, b));
                                    let at = a * t.out_row_stride + bx * t.out_px_stride + c0;
                                    let rat = a * t.res_row_stride + bx * t.res_px_stride + c0;
                                    if lanes == L {
                                        if !t.res.is_null() {
                                            o = $add(o, $load(res.add(rat)));
                                        }
                                        $store(out.add(at), o);
                                    } else {
                                        if !t.res.is_null() {
                                            o = $add(o, $mload(res.add(rat), lanes));
                                        }
                                        $mstore(out.add(at), o, lanes);
                                    }
                                }
                            }
                            c0 += L;
                        }
                    }
                }
            }

            /// One tile: `P` pixels × `NV` vectors of output channels.
            ///
            /// # Safety
            /// See the module's documentation: the pointers of `t` cover what the
            /// tile reads and writes.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn tile<const NV: usize, const P: usize>(t: &Tile) {
                let bw = NV * L;
                // The loops over pixels and vectors are unrolled by `unroll!` with
                // constant indices, so that the accumulators are registers from the
                // start (a loop over the array keeps them in memory).
                let mut acc = [[$zero(); NV]; P];
                // SAFETY (whole body): the reads and writes stay inside what `t`
                // describes, as the caller guarantees.
                unsafe {
                    unroll!(v < NV, 2, {
                        let b = $load(t.bias.add(v * L));
                        unroll!(p < P, 24, {
                            acc[p][v] = b;
                        });
                    });
                    let mut wp = t.w;
                    for ky in 0..t.k {
                        for kx in 0..t.k {
                            let ip = t.inp.add(ky * t.row_stride + kx * t.tap_stride);
                            for c in 0..t.ic {
                                let w0 = $load(wp);
                                let w1 = if NV > 1 { $load(wp.add(L)) } else { w0 };
                                wp = wp.add(bw);
                                let ipc = ip.add(c);
                                unroll!(p < P, 24, {
                                    let x = $set1(*ipc.add(p * t.px_stride));
                                    acc[p][0] = $fmadd(x, w0, acc[p][0]);
                                    if NV > 1 {
                                        acc[p][NV - 1] = $fmadd(x, w1, acc[p][NV - 1]);
                                    }
                                });
                            }
                        }
                    }
                    unroll!(p < P, 24, {
                        let out = t.out.add(p * t.out_stride);
                        let res = t.res.wrapping_add(p * t.res_stride);
                        unroll!(v < NV, 2, {
                            let mut y = act(t.act, acc[p][v]);
                            let lanes = t.nvalid.saturating_sub(v * L).min(L);
                            if lanes == L {
                                if !t.res.is_null() {
                                    y = $add(y, $load(res.add(v * L)));
                                }
                                $store(out.add(v * L), y);
                            } else if lanes > 0 {
                                if !t.res.is_null() {
                                    y = $add(y, $mload(res.add(v * L), lanes));
                                }
                                $mstore(out.add(v * L), y, lanes);
                            }
                        });
                    });
                }
            }

            /// The tile kernels by (vectors - 1, pixels - 1).
            pub(crate) fn table() -> [Vec<TileFn>; 2] {
                let one: Vec<TileFn> = tile_fns!(1, $pmax1);
                let two: Vec<TileFn> = tile_fns!(2, $pmax2);
                [one, two]
            }
        }
    };
}

/// The instances `tile::<NV, 1..=PMAX>` as function pointers.
macro_rules! tile_fns {
    ($nv:literal, 24) => {
        tile_fns!(@ $nv; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24)
    };
    ($nv:literal, 12) => {
        tile_fns!(@ $nv; 1 2 3 4 5 6 7 8 9 10 11 12)
    };
    ($nv:literal, 6) => {
        tile_fns!(@ $nv; 1 2 3 4 5 6)
    };
    ($nv:literal, 4) => {
        tile_fns!(@ $nv; 1 2 3 4)
    };
    (@ $nv:literal; $($p:literal)*) => {
        vec![$(tile::<$nv, $p> as TileFn),*]
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    // Masked loads and stores of the first `lanes` floats.

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn load512_n(p: *const f32, lanes: usize) -> __m512 {
        let m = ((1u32 << lanes) - 1) as u16;
        // SAFETY: the caller's `lanes` floats at p are readable; masked lanes are
        // not touched.
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn store512_n(p: *mut f32, v: __m512, lanes: usize) {
        let m = ((1u32 << lanes) - 1) as u16;
        // SAFETY: as above, for writing.
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn mask256(lanes: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), idx)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn load256_n(p: *const f32, lanes: usize) -> __m256 {
        // SAFETY: the caller's `lanes` floats at p are readable.
        unsafe { _mm256_maskload_ps(p, mask256(lanes)) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn store256_n(p: *mut f32, v: __m256, lanes: usize) {
        // SAFETY: as above, for writing.
        unsafe { _mm256_maskstore_ps(p, mask256(lanes), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn round512(x: __m512) -> __m512 {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn round256(x: __m256) -> __m256 {
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn slli512(x: __m512i) -> __m512i {
        _mm512_slli_epi32::<23>(x)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn slli256(x: __m256i) -> __m256i {
        _mm256_slli_epi32::<23>(x)
    }
}

#[cfg(target_arch = "x86_64")]
use x86::*;

#[cfg(target_arch = "x86_64")]
kernel_set! {
    mod avx512, feature = "avx512f", vec = __m512, lanes = 16,
    zero = _mm512_setzero_ps, set1 = _mm512_set1_ps, load = _mm512_loadu_ps, store = _mm512_storeu_ps,
    fmadd = _mm512_fmadd_ps, add = _mm512_add_ps, sub = _mm512_sub_ps, mul = _mm512_mul_ps, div = _mm512_div_ps,
    max = _mm512_max_ps, min = _mm512_min_ps, round = round512,
    cvt = _mm512_cvtps_epi32, slli = slli512, addi = _mm512_add_epi32, seti = _mm512_set1_epi32,
    cast = _mm512_castsi512_ps,
    mask_load = load512_n, mask_store = store512_n,
    pmax1 = 24, pmax2 = 12
}

#[cfg(target_arch = "x86_64")]
kernel_set! {
    mod avx2, feature = "avx2,fma", vec = __m256, lanes = 8,
    zero = _mm256_setzero_ps, set1 = _mm256_set1_ps, load = _mm256_loadu_ps, store = _mm256_storeu_ps,
    fmadd = _mm256_fmadd_ps, add = _mm256_add_ps, sub = _mm256_sub_ps, mul = _mm256_mul_ps, div = _mm256_div_ps,
    max = _mm256_max_ps, min = _mm256_min_ps, round = round256,
    cvt = _mm256_cvtps_epi32, slli = slli256, addi = _mm256_add_epi32, seti = _mm256_set1_epi32,
    cast = _mm256_castsi256_ps,
    mask_load = load256_n, mask_store = store256_n,
    pmax1 = 12, pmax2 = 6
}

/// The kernels in plain Rust (the compiler vectorises what it can for the
/// baseline instruction set): any machine, and the reference of the others.
pub(crate) mod portable {
    use super::*;

    /// Lanes of one "vector" (a chunk of floats the loops work on).
    pub(crate) const L: usize = 8;
    /// Most pixels of a one-vector tile, of a two-vector tile.
    pub(crate) const PMAX: [usize; 2] = [6, 4];

    /// The box decoding of one row (see [`BoxRow`]).
    ///
    /// # Safety
    /// As the vector kernels' `boxes`.
    pub(crate) unsafe fn boxes(b: &BoxRow) {
        // SAFETY (whole body): as the caller guarantees.
        unsafe {
            let proj = std::slice::from_raw_parts(b.proj, 16);
            for x in 0..b.w {
                let s = b.src.add(x * b.px_stride);
                let mut d = [0f32; 4];
                for (side, dv) in d.iter_mut().enumerate() {
                    let bins = std::slice::from_raw_parts(s.add(side * 16), 16);
                    let m = bins.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    let (mut sum, mut dot) = (0f32, 0f32);
                    for (&v, &p) in bins.iter().zip(proj) {
                        let e = exp_scalar(v - m);
                        sum += e;
                        dot += e * p;
                    }
                    *dv = dot / sum;
                }
                store_box(b, x, d);
            }
        }
    }

    /// `iters` rounds of 12 independent chunks of multiply-adds.
    pub(crate) fn fma_burn(iters: usize) -> f32 {
        let mut acc = [[0f32; L]; 12];
        for (i, a) in acc.iter_mut().enumerate() {
            a.fill(i as f32 * 1e-3);
        }
        for _ in 0..iters {
            for a in acc.iter_mut() {
                for v in a.iter_mut() {
                    *v = *v * 0.999_999 + 1e-7;
                }
            }
        }
        acc.iter().flatten().sum()
    }

    /// The Winograd input transform (see [`WinoIn`]).
    ///
    /// # Safety
    /// As the vector kernels' `wino_in`.
    pub(crate) unsafe fn wino_in(t: &WinoIn) {
        // SAFETY (whole body): as the caller guarantees.
        unsafe {
            for tile in 0..t.tiles {
                let base = t.inp.add(2 * tile * t.px_stride);
                let dst = t.v.add(tile * t.ic);
                for c in 0..t.ic {
                    let mut d = [[0f32; 4]; 4];
                    for (i, row) in d.iter_mut().enumerate() {
                        for (j, x) in row.iter_mut().enumerate() {
                            *x = *base.add(i * t.row_stride + j * t.px_stride + c);
                        }
                    }
                    for (xi, x) in wino_bt(d).iter().enumerate() {
                        *dst.add(xi * t.xi_stride + c) = *x;
                    }
                }
            }
        }
    }

    /// The Winograd output transform (see [`WinoOut`]).
    ///
    /// # Safety
    /// As the vector kernels' `wino_out`.
    pub(crate) unsafe fn wino_out(t: &WinoOut) {
        // SAFETY (whole body): as the caller guarantees.
        unsafe {
            for tile in 0..t.tiles {
                let src = t.m.add(tile * t.ocp);
                let out = t.out.add(2 * tile * t.out_px_stride);
                for c in 0..t.oc {
                    let mut m = [0f32; 16];
                    for (xi, x) in m.iter_mut().enumerate() {
                        *x = *src.add(xi * t.xi_stride + c);
                    }
                    let b = *t.bias.add(c);
                    for (a, yr) in wino_at(m).iter().enumerate() {
                        for (bx, &y) in yr.iter().enumerate() {
                            let mut o = act_scalar(t.act, y + b);
                            if !t.res.is_null() {
                                o += *t.res.add(
                                    (2 * tile + bx) * t.res_px_stride + a * t.res_row_stride + c,
                                );
                            }
                            *out.add(a * t.out_row_stride + bx * t.out_px_stride + c) = o;
                        }
                    }
                }
            }
        }
    }

    /// One tile: `P` pixels × `NV` chunks of `L` output channels.
    ///
    /// # Safety
    /// See the module's documentation.
    pub(crate) unsafe fn tile<const NV: usize, const P: usize>(t: &Tile) {
        let bw = NV * L;
        let mut acc = [[[0f32; L]; NV]; P];
        // SAFETY (whole body): as the caller guarantees.
        unsafe {
            for a in acc.iter_mut() {
                for (v, av) in a.iter_mut().enumerate() {
                    for (j, x) in av.iter_mut().enumerate() {
                        *x = *t.bias.add(v * L + j);
                    }
                }
            }
            let mut wp = t.w;
            for ky in 0..t.k {
                for kx in 0..t.k {
                    let ip = t.inp.add(ky * t.row_stride + kx * t.tap_stride);
                    for c in 0..t.ic {
                        let w = std::slice::from_raw_parts(wp, bw);
                        wp = wp.add(bw);
                        for (p, a) in acc.iter_mut().enumerate() {
                            let x = *ip.add(c + p * t.px_stride);
                            for (v, av) in a.iter_mut().enumerate() {
                                for (j, s) in av.iter_mut().enumerate() {
                                    *s += x * w[v * L + j];
                                }
                            }
                        }
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                let out = t.out.add(p * t.out_stride);
                for (v, av) in a.iter().enumerate() {
                    for (j, &s) in av.iter().enumerate() {
                        let ch = v * L + j;
                        if ch < t.nvalid {
                            let mut y = act_scalar(t.act, s);
                            if !t.res.is_null() {
                                y += *t.res.add(p * t.res_stride + ch);
                            }
                            *out.add(ch) = y;
                        }
                    }
                }
            }
        }
    }

    /// The tile kernels by (vectors - 1, pixels - 1).
    pub(crate) fn table() -> [Vec<TileFn>; 2] {
        let one: Vec<TileFn> = tile_fns!(1, 6);
        let two: Vec<TileFn> = tile_fns!(2, 4);
        [one, two]
    }
}
