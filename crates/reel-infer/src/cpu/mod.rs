//! The CPU engine for YOLOv8 in f32: what runs the network when the device is the
//! CPU (candle's graph stays the GPU path and the reference it is tested
//! against).
//!
//! - Activations are channels-last (NHWC) through the whole network, each buffer
//!   with a one-pixel zero border, so a 3×3 convolution reads its padding
//!   without a test; a concatenation costs nothing, because each producer writes
//!   its channel slice of the concatenated buffer.
//! - Weights are packed once at load (batch-norm already folded by
//!   [`crate::weights`]) into the kernel's panels: per block of output channels,
//!   `[tap][input channel][lanes]`.
//! - One direct convolution kernel for 1×1 and 3×3, stride 1 and 2 (no im2col):
//!   a tile of a row's pixels × a block of output channels kept in registers,
//!   with a fused epilogue (bias, SiLU or sigmoid with a vectorised `exp`, the
//!   bottleneck's residual, the channel-slice store).
//! - Buffers are planned once per input size (and number of per-thread
//!   workspaces) and reused: a forward pass allocates nothing.
//! - Threads are explicit ([`Runner::new`]): at batch 1 every layer's rows ×
//!   channel blocks are shared among them, with a barrier between layers; at
//!   batch 2 and more each thread runs whole images on its own workspace.
//! - The stride-1 3×3 convolutions with at least [`WINOGRAD_MIN_CHANNELS`]
//!   input and output channels run as Winograd F(2×2, 3×3) ([`winograd_applies`]):
//!   a row of 2×2 output tiles has its 4×4 input patches transformed (`Bᵀ d B`),
//!   multiplied by the weights transformed at load (`G g Gᵀ`, 16 small matrix
//!   products through the same tile kernel as the 1×1 convolutions), and
//!   transformed back (`Aᵀ m A`) with the epilogue fused: 16 multiply-adds per
//!   2×2 outputs and channel pair instead of 36. An odd last row or column is
//!   left to the direct kernel.
//! - The kernels are chosen at run time: AVX-512, AVX2 + FMA, or portable Rust;
//!   `REEL_CPU_KERNELS=avx512|avx2|portable` forces one ([`kernel_set`]).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::InferError;

mod exec;
pub(crate) mod plan;
mod pool;
mod simd;

pub use exec::Runner;
pub(crate) use plan::{C2fIds, Graph, HeadIds};

/// The fewest input and output channels of a stride-1 3×3 convolution that runs
/// as Winograd F(2×2, 3×3): below it the transforms cost more than they save.
pub const WINOGRAD_MIN_CHANNELS: usize = 64;

/// Whether a convolution of kernel `k`, `stride`, `ic` input and `oc` output
/// channels runs as Winograd F(2×2, 3×3) (with every engine kernel set).
pub fn winograd_applies(k: usize, stride: usize, ic: usize, oc: usize) -> bool {
    k == 3 && stride == 1 && ic >= WINOGRAD_MIN_CHANNELS && oc >= WINOGRAD_MIN_CHANNELS
}

/// The environment variable that forces a kernel set.
pub const KERNELS_ENV: &str = "REEL_CPU_KERNELS";

/// An activation fused into a convolution's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None (the head's last convolutions).
    None,
    /// `x * sigmoid(x)`, YOLOv8's activation.
    Silu,
    /// `1 / (1 + e^-x)` (the class scores).
    Sigmoid,
}

/// A set of convolution kernels, by instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelSet {
    /// AVX-512 (F): 16-lane vectors, 32 registers.
    Avx512,
    /// AVX2 with FMA: 8-lane vectors, 16 registers.
    Avx2,
    /// Plain Rust, for any machine.
    Portable,
    /// No CPU engine: candle's own CPU convolution (the reference, slower).
    Candle,
}

impl KernelSet {
    /// The CPU engine's kernel sets, fastest first.
    pub const ENGINE: [KernelSet; 3] = [KernelSet::Avx512, KernelSet::Avx2, KernelSet::Portable];

    /// `avx512`, `avx2` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Avx512 => "avx512",
            KernelSet::Avx2 => "avx2",
            KernelSet::Portable => "portable",
            KernelSet::Candle => "candle",
        }
    }

    /// Whether this machine can run it.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelSet::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            KernelSet::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            KernelSet::Avx512 | KernelSet::Avx2 => false,
            KernelSet::Portable | KernelSet::Candle => true,
        }
    }

    /// The fastest engine kernels this machine supports.
    pub fn best() -> Self {
        Self::ENGINE
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(KernelSet::Portable)
    }
}

impl fmt::Display for KernelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KernelSet {
    type Err = InferError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ENGINE
            .into_iter()
            .chain([KernelSet::Candle])
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                InferError::Options(format!(
                    "unknown CPU kernel set `{s}`: avx512, avx2, portable, candle or auto"
                ))
            })
    }
}

/// The kernel set a model loaded on the CPU in f32 runs with: the one
/// `REEL_CPU_KERNELS` names (`avx512`, `avx2`, `portable`, or `candle` for
/// candle's own convolution instead of the engine; `auto` or unset: the fastest
/// this machine supports). Naming one the machine cannot run is an error.
pub fn kernel_set() -> Result<KernelSet, InferError> {
    kernel_set_for(std::env::var(KERNELS_ENV).ok().as_deref())
}

/// [`kernel_set`] for a value of `REEL_CPU_KERNELS` (`None`: unset).
fn kernel_set_for(value: Option<&str>) -> Result<KernelSet, InferError> {
    match value.map(str::trim) {
        None | Some("") => Ok(KernelSet::best()),
        Some(v) if v.eq_ignore_ascii_case("auto") => Ok(KernelSet::best()),
        Some(v) => {
            let k: KernelSet = v
                .parse()
                .map_err(|e| InferError::Options(format!("{KERNELS_ENV}={v}: {e}")))?;
            if !k.is_supported() {
                return Err(InferError::Options(format!(
                    "{KERNELS_ENV}={v}: this CPU cannot run the {k} kernels"
                )));
            }
            Ok(k)
        }
    }
}

/// The threads the engine uses when not told: every core this process may run
/// on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The functions of one kernel set.
#[derive(Clone)]
pub(crate) struct Kernels {
    set: KernelSet,
    /// Lanes of a vector.
    lanes: usize,
    /// Most pixels of a tile of one vector, of two.
    pmax: [usize; 2],
    /// Tile kernels by (vectors - 1, pixels - 1).
    tiles: [Vec<simd::TileFn>; 2],
    /// The box decoding of a row of anchors.
    boxes: simd::BoxRowFn,
    /// Rounds of 12 vector multiply-adds.
    fma_burn: unsafe fn(usize) -> f32,
    /// Winograd input and output transforms.
    wino_in: simd::WinoInFn,
    wino_out: simd::WinoOutFn,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.set.name())
    }
}

impl Kernels {
    /// The functions of `set`; an error when this machine cannot run it.
    pub(crate) fn new(set: KernelSet) -> Result<Self, InferError> {
        if set == KernelSet::Candle || !set.is_supported() {
            return Err(InferError::Options(format!(
                "this CPU cannot run the {set} kernels of the CPU engine"
            )));
        }
        Ok(match set {
            #[cfg(target_arch = "x86_64")]
            KernelSet::Avx512 => Self {
                set,
                lanes: simd::avx512::L,
                pmax: simd::avx512::PMAX,
                tiles: simd::avx512::table(),
                boxes: simd::avx512::boxes,
                fma_burn: simd::avx512::fma_burn,
                wino_in: simd::avx512::wino_in,
                wino_out: simd::avx512::wino_out,
            },
            #[cfg(target_arch = "x86_64")]
            KernelSet::Avx2 => Self {
                set,
                lanes: simd::avx2::L,
                pmax: simd::avx2::PMAX,
                tiles: simd::avx2::table(),
                boxes: simd::avx2::boxes,
                fma_burn: simd::avx2::fma_burn,
                wino_in: simd::avx2::wino_in,
                wino_out: simd::avx2::wino_out,
            },
            #[cfg(not(target_arch = "x86_64"))]
            KernelSet::Avx512 | KernelSet::Avx2 => unreachable!("refused above"),
            KernelSet::Portable | KernelSet::Candle => Self {
                set,
                lanes: simd::portable::L,
                pmax: simd::portable::PMAX,
                tiles: simd::portable::table(),
                boxes: simd::portable::boxes,
                fma_burn: simd::portable::fma_burn,
                wino_in: simd::portable::wino_in,
                wino_out: simd::portable::wino_out,
            },
        })
    }

    /// Most 2×2 tiles of a row transformed together by a Winograd convolution:
    /// two of the widest tile kernel's pixels.
    pub(crate) fn wino_tiles(&self) -> usize {
        2 * self.pmax[1]
    }
}

/// A buffer of floats aligned to 64 bytes (a cache line, a 16-lane vector).
#[derive(Clone, Default)]
pub(crate) struct Aligned {
    chunks: Vec<Chunk>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Chunk([f32; 16]);

impl Aligned {
    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> Self {
        Self {
            chunks: vec![Chunk([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }

    /// The floats.
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Chunk` is 16 f32s with no padding (repr(C), 64 bytes), so the
        // chunks are `16 * chunks.len() >= len` contiguous initialised floats.
        unsafe { std::slice::from_raw_parts(self.chunks.as_ptr().cast::<f32>(), self.len) }
    }

    /// The floats, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.chunks.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

/// A convolution's weights packed for a kernel set.
#[derive(Clone)]
pub(crate) struct PackedConv {
    /// The layer's name (its prefix in the weights).
    pub name: String,
    pub k: usize,
    pub stride: usize,
    pub ic: usize,
    pub oc: usize,
    /// Blocks of output channels.
    pub blocks: Vec<Block>,
    /// Every block's panel, one after the other.
    pub weights: Aligned,
    /// Every block's bias, padded to its lanes.
    pub bias: Aligned,
    /// The Winograd F(2×2, 3×3) weights, when the layer runs so
    /// ([`winograd_applies`]): per block, `[16][ic][lanes]` (`U = G g Gᵀ`).
    pub wino: Option<Aligned>,
}

/// A block of output channels: `nv` vectors, of which `nvalid` lanes are real.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub oc0: usize,
    pub nv: usize,
    pub nvalid: usize,
    pub w_off: usize,
    pub b_off: usize,
    /// Offset of the block's Winograd weights.
    pub u_off: usize,
}

impl PackedConv {
    /// Packs `w` (`[oc][ic][k][k]`, PyTorch's layout) and `b` (`[oc]`) for
    /// vectors of `lanes`: blocks of two vectors, one at the tail when one is
    /// enough.
    pub(crate) fn pack(
        name: &str,
        w: &[f32],
        b: &[f32],
        (oc, ic, k): (usize, usize, usize),
        stride: usize,
        lanes: usize,
    ) -> Self {
        debug_assert_eq!(w.len(), oc * ic * k * k);
        debug_assert_eq!(b.len(), oc);
        let mut blocks = Vec::new();
        let (mut oc0, mut w_len, mut b_len, mut u_len) = (0, 0, 0, 0);
        while oc0 < oc {
            let rest = oc - oc0;
            let nv = if rest > lanes { 2 } else { 1 };
            let nvalid = rest.min(nv * lanes);
            blocks.push(Block {
                oc0,
                nv,
                nvalid,
                w_off: w_len,
                b_off: b_len,
                u_off: u_len,
            });
            w_len += k * k * ic * nv * lanes;
            u_len += 16 * ic * nv * lanes;
            b_len += nv * lanes;
            oc0 += nvalid;
        }
        let mut weights = Aligned::zeros(w_len);
        let mut bias = Aligned::zeros(b_len);
        let (ws, bs) = (weights.as_mut_slice(), bias.as_mut_slice());
        for blk in &blocks {
            let bw = blk.nv * lanes;
            for j in 0..blk.nvalid {
                let o = blk.oc0 + j;
                bs[blk.b_off + j] = b[o];
                for c in 0..ic {
                    for t in 0..k * k {
                        ws[blk.w_off + (t * ic + c) * bw + j] = w[((o * ic) + c) * k * k + t];
                    }
                }
            }
        }
        let wino = winograd_applies(k, stride, ic, oc).then(|| {
            let mut u = Aligned::zeros(u_len);
            let us = u.as_mut_slice();
            for blk in &blocks {
                let bw = blk.nv * lanes;
                for j in 0..blk.nvalid {
                    let o = blk.oc0 + j;
                    for c in 0..ic {
                        let g = &w[(o * ic + c) * 9..][..9];
                        for (xi, v) in wino_weights(g).into_iter().enumerate() {
                            us[blk.u_off + (xi * ic + c) * bw + j] = v;
                        }
                    }
                }
            }
            u
        });
        Self {
            name: name.to_string(),
            k,
            stride,
            ic,
            oc,
            blocks,
            weights,
            bias,
            wino,
        }
    }

    /// Output channels padded to whole vectors (where the last block ends).
    pub(crate) fn oc_padded(&self, lanes: usize) -> usize {
        self.blocks.last().map_or(0, |b| b.oc0 + b.nv * lanes)
    }

    /// Multiply-adds per output pixel.
    pub(crate) fn macs_per_pixel(&self) -> u64 {
        (self.k * self.k * self.ic * self.oc) as u64
    }
}

/// `G g Gᵀ` of F(2×2, 3×3) for one 3×3 kernel `g` (row-major): the 16 values
/// in row-major order, computed in f64.
fn wino_weights(g: &[f32]) -> [f32; 16] {
    let gm: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut t = [[0f64; 3]; 4];
    for (i, ti) in t.iter_mut().enumerate() {
        for (j, v) in ti.iter_mut().enumerate() {
            *v = (0..3).map(|k| gm[i][k] * f64::from(g[k * 3 + j])).sum();
        }
    }
    let mut u = [0f32; 16];
    for i in 0..4 {
        for j in 0..4 {
            u[i * 4 + j] = (0..3).map(|k| t[i][k] * gm[j][k]).sum::<f64>() as f32;
        }
    }
    u
}

/// The YOLOv8 network packed for the CPU engine: built once per loaded model,
/// shared, immutable. [`Runner`] runs it.
pub struct Network {
    id: u64,
    kernels: Kernels,
    convs: Vec<PackedConv>,
    graph: Graph,
    nc: usize,
    proj: [f32; 16],
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("kernels", &self.kernels.set)
            .field("convolutions", &self.convs.len())
            .field("classes", &self.nc)
            .finish_non_exhaustive()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Network {
    /// Packs the convolutions of `graph` (`convs[i]` are `(name, weight, bias,
    /// (oc, ic, k), stride)`) for `set`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn new(
        set: KernelSet,
        convs: &[(String, Vec<f32>, Vec<f32>, (usize, usize, usize), usize)],
        graph: Graph,
        nc: usize,
        proj: [f32; 16],
    ) -> Result<Self, InferError> {
        let kernels = Kernels::new(set)?;
        let convs = convs
            .iter()
            .map(|(name, w, b, shape, stride)| {
                PackedConv::pack(name, w, b, *shape, *stride, kernels.lanes)
            })
            .collect();
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kernels,
            convs,
            graph,
            nc,
            proj,
        })
    }

    /// The kernels it runs with.
    pub fn kernel_set(&self) -> KernelSet {
        self.kernels.set
    }

    /// Classes the head predicts.
    pub fn num_classes(&self) -> usize {
        self.nc
    }

    /// Rows of the output per anchor: 4 box values, then the class scores.
    pub fn rows(&self) -> usize {
        4 + self.nc
    }

    /// Anchors of an `h` × `w` input (multiples of 32).
    pub fn anchors(h: usize, w: usize) -> usize {
        [8, 16, 32].iter().map(|s| (h / s) * (w / s)).sum()
    }

    /// Multiply-adds of one image of `h` × `w` (the convolutions, as direct
    /// convolutions: what the network needs).
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        plan::Layout::build(self, h, w)
            .ops
            .iter()
            .map(|op| op.macs(self))
            .sum()
    }

    /// Multiply-adds the kernels run for one image of `h` × `w`: fewer than
    /// [`Network::macs`] where convolutions run as Winograd F(2×2, 3×3) (the
    /// transforms not counted). This is what the machine's multiply-add peak
    /// bounds.
    pub fn executed_macs(&self, h: usize, w: usize) -> u64 {
        plan::Layout::build(self, h, w)
            .ops
            .iter()
            .map(|op| op.executed_macs(self))
            .sum()
    }
}

/// Time spent in one layer during the last forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTime {
    /// The layer (`model.2.m.0.cv1`, `model.9.pool1`, …).
    pub name: String,
    /// Wall time of the layer (at batch 1, all threads together; at larger
    /// batches, the sum over the images the first thread ran).
    pub time: Duration,
    /// Multiply-adds of the layer per image as a direct convolution (0 for
    /// layers that are not convolutions).
    pub macs: u64,
    /// Multiply-adds the kernels run for it per image (fewer than `macs` for a
    /// Winograd convolution).
    pub executed_macs: u64,
}

/// Runs one convolution with the engine's kernels, NCHW in and out, padding
/// `k / 2` (as every YOLOv8 convolution): `x` is `[n, ic, h, w]`, `weight`
/// `[oc, ic, k, k]`, `bias` `[oc]`, the optional `residual` `[n, oc, ho, wo]` is
/// added after the activation. Returns `[n, oc, ho, wo]`. This is the kernel the
/// network runs, through the same planned buffers, for testing it against other
/// implementations one layer at a time.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    set: KernelSet,
    threads: usize,
    x: &[f32],
    (n, ic, h, w): (usize, usize, usize, usize),
    weight: &[f32],
    (oc, k): (usize, usize),
    bias: &[f32],
    stride: usize,
    act: Act,
    residual: Option<&[f32]>,
) -> Result<Vec<f32>, InferError> {
    exec::conv2d(
        set,
        threads,
        x,
        (n, ic, h, w),
        weight,
        (oc, k),
        bias,
        stride,
        act,
        residual,
    )
}

/// The multiply-add throughput this machine reaches with the kernels `set` on
/// `threads` threads at once, in GFLOP/s (a multiply-add counts as two): each
/// thread runs independent chains of vector multiply-adds for about `seconds`.
/// This is the ceiling the convolutions are measured against.
pub fn fma_peak_gflops(set: KernelSet, threads: usize, seconds: f64) -> Result<f64, InferError> {
    let kernels = Kernels::new(set)?;
    let threads = threads.max(1);
    let lanes = kernels.lanes as f64;
    let burn = kernels.fma_burn;
    let chunk = 1 << 16;
    let run = move || {
        let started = std::time::Instant::now();
        let mut rounds = 0usize;
        let mut sink = 0f32;
        while started.elapsed().as_secs_f64() < seconds {
            // SAFETY: the kernel set is supported (checked by `Kernels::new`).
            sink += unsafe { burn(chunk) };
            rounds += chunk;
        }
        std::hint::black_box(sink);
        rounds as f64 * 12.0 * lanes * 2.0 / started.elapsed().as_secs_f64()
    };
    let total: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(run)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    Ok(total / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_picks_the_kernels() {
        assert_eq!(kernel_set_for(None).unwrap(), KernelSet::best());
        assert_eq!(kernel_set_for(Some(" auto ")).unwrap(), KernelSet::best());
        assert_eq!(
            kernel_set_for(Some("PORTABLE")).unwrap(),
            KernelSet::Portable
        );
        assert_eq!(kernel_set_for(Some("candle")).unwrap(), KernelSet::Candle);
        let e = kernel_set_for(Some("sse9")).unwrap_err().to_string();
        assert!(
            e.contains("REEL_CPU_KERNELS=sse9") && e.contains("avx512, avx2"),
            "{e}"
        );
        for k in KernelSet::ENGINE {
            let got = kernel_set_for(Some(k.name()));
            assert_eq!(got.is_ok(), k.is_supported(), "{k}: {got:?}");
        }
        assert!(KernelSet::best().is_supported());
    }

    #[test]
    fn the_winograd_transforms_compute_the_3x3_correlation() {
        // Integers: every step is exact, so the 2x2 outputs equal the direct sums.
        let d: [[f32; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| (i * 7 + j * 3) as f32 % 5.0 - 2.0));
        let g: Vec<f32> = (0..9).map(|k| ((k * 5) % 7) as f32 - 3.0).collect();
        let v = simd::wino_bt(d);
        let u = wino_weights(&g);
        let m: [f32; 16] = std::array::from_fn(|i| v[i] * u[i]);
        let y = simd::wino_at(m);
        for (a, row) in y.iter().enumerate() {
            for (b, &got) in row.iter().enumerate() {
                let want: f32 = (0..3)
                    .flat_map(|ky| (0..3).map(move |kx| (ky, kx)))
                    .map(|(ky, kx)| d[a + ky][b + kx] * g[ky * 3 + kx])
                    .sum();
                assert_eq!(got, want, "output ({a}, {b})");
            }
        }
        assert!(winograd_applies(3, 1, 64, 64));
        assert!(!winograd_applies(3, 2, 64, 64));
        assert!(!winograd_applies(1, 1, 64, 64));
        assert!(!winograd_applies(3, 1, 32, 64));
    }

    #[test]
    fn packing_puts_each_weight_in_its_lane_and_pads_the_tail() {
        // 3 output channels, 2 inputs, 1x1, 8 lanes: one block of one vector.
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let p = PackedConv::pack("t", &w, &[7.0, 8.0, 9.0], (3, 2, 1), 1, 8);
        assert_eq!(p.blocks.len(), 1);
        assert_eq!((p.blocks[0].nv, p.blocks[0].nvalid), (1, 3));
        let ws = p.weights.as_slice();
        // [input channel][lane]: lane j holds output channel j.
        assert_eq!(&ws[..8], &[1.0, 3.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&ws[8..16], &[2.0, 4.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&p.bias.as_slice()[..4], &[7.0, 8.0, 9.0, 0.0]);
        // 40 channels in 16 lanes: a block of two vectors, then one of one.
        let p = PackedConv::pack("t", &[0.0; 40], &[0.0; 40], (40, 1, 1), 1, 16);
        let shape: Vec<(usize, usize, usize)> =
            p.blocks.iter().map(|b| (b.oc0, b.nv, b.nvalid)).collect();
        assert_eq!(shape, [(0, 2, 32), (32, 1, 8)]);
    }
}
