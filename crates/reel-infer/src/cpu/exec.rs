//! Running a planned network: the workspaces, the split of each layer among the
//! threads, and each operation's loops.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::plan::{Layout, Op, View};
use super::pool::{Barrier, Pool};
use super::simd::{BoxRow, Tile, WinoIn, WinoOut};
use super::{Act, Aligned, KernelSet, Kernels, LayerTime, Network, PackedConv};
use crate::InferError;

/// A raw pointer handed to the threads of a job.
#[derive(Clone, Copy)]
struct Ptr(*mut f32);

// SAFETY: the threads of a job write disjoint parts of what it points to (each
// op's rows, or each thread's own workspace and images), and read only what an
// earlier op (before a barrier) or the caller wrote.
unsafe impl Send for Ptr {}
// SAFETY: as above.
unsafe impl Sync for Ptr {}

/// What one forward pass works on.
struct Ctx<'a> {
    kernels: &'a Kernels,
    convs: &'a [PackedConv],
    proj: &'a [f32; 16],
    ops: &'a [Op],
    /// Each thread's scratch (the Winograd transforms'), by thread number.
    scratch: &'a [Ptr],
    /// The NCHW input of the whole batch.
    input: *const f32,
    /// The output of the whole batch, `[n, rows, anchors]`.
    out: Ptr,
    rows: usize,
    anchors: usize,
    /// Input size.
    h: usize,
    w: usize,
}

// SAFETY: see `Ptr`; `input` is only read.
unsafe impl Sync for Ctx<'_> {}

/// The planned state for one (network, input size).
struct State {
    net: u64,
    layout: Layout,
    arenas: Vec<Aligned>,
    bases: Vec<Ptr>,
    /// One scratch buffer per thread, kept alive for `scratch_ptrs`.
    _scratch: Vec<Aligned>,
    scratch_ptrs: Vec<Ptr>,
    counters: Vec<AtomicUsize>,
    times: Vec<AtomicU64>,
    barrier: Barrier,
}

/// Runs a [`Network`] on a fixed set of threads, with its workspaces planned once
/// per input size and reused. One runner runs one batch at a time; a detector
/// keeps its own.
pub struct Runner {
    pool: Pool,
    state: Option<State>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("threads", &self.pool.threads())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner on `threads` threads (0: [`super::default_threads`]), the
    /// caller's included.
    pub fn new(threads: usize) -> Self {
        let threads = if threads == 0 {
            super::default_threads()
        } else {
            threads
        };
        Self {
            pool: Pool::new(threads),
            state: None,
        }
    }

    /// Threads it runs on.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `n` images (`input`: `[n, 3, h, w]` f32, RGB in 0..1, `h` and `w`
    /// positive multiples of 32) and writes `[n, 4 + classes, anchors]` into
    /// `out` (box centre x, y, width, height in input pixels, then each class's
    /// score). After the first pass at a size, a pass allocates nothing.
    pub fn run(
        &mut self,
        net: &Network,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        if h == 0 || w == 0 || !h.is_multiple_of(32) || !w.is_multiple_of(32) {
            return Err(InferError::Options(format!(
                "the input must be [batch, 3, h, w] with h and w positive multiples of 32, not [_, 3, {h}, {w}]"
            )));
        }
        let anchors = Network::anchors(h, w);
        let rows = net.rows();
        if input.len() < n * 3 * h * w || out.len() < n * rows * anchors {
            return Err(InferError::Options(format!(
                "a batch of {n} at {h}x{w} needs {} input and {} output floats, got {} and {}",
                n * 3 * h * w,
                n * rows * anchors,
                input.len(),
                out.len()
            )));
        }
        if n == 0 {
            return Ok(());
        }
        let threads = self.pool.threads();
        let workspaces = if n == 1 { 1 } else { n.min(threads) };
        self.prepare(net, h, w, workspaces);
        let Some(st) = &self.state else {
            unreachable!("prepared above")
        };
        for c in &st.counters {
            c.store(0, Ordering::Relaxed);
        }
        for t in &st.times {
            t.store(0, Ordering::Relaxed);
        }
        let ctx = Ctx {
            kernels: &net.kernels,
            convs: &net.convs,
            proj: &net.proj,
            ops: &st.layout.ops,
            scratch: &st.scratch_ptrs,
            input: input.as_ptr(),
            out: Ptr(out.as_mut_ptr()),
            rows,
            anchors,
            h,
            w,
        };
        if n == 1 {
            let base = st.bases[0];
            self.pool.broadcast(&|tid| {
                let mut last = Instant::now();
                for (i, op) in ctx.ops.iter().enumerate() {
                    let groups = groups_of(op, &ctx, threads);
                    let items = op.rows() * groups;
                    loop {
                        let item = st.counters[i].fetch_add(1, Ordering::Relaxed);
                        if item >= items {
                            break;
                        }
                        // SAFETY: each item (row, group) is claimed by one thread;
                        // see `run_item`.
                        unsafe {
                            run_item(&ctx, tid, base, op, 0, item / groups, item % groups, groups)
                        };
                    }
                    st.barrier.wait();
                    if tid == 0 {
                        let now = Instant::now();
                        st.times[i].fetch_add((now - last).as_nanos() as u64, Ordering::Relaxed);
                        last = now;
                    }
                }
            });
        } else {
            let bases = &st.bases[..workspaces];
            // Images are taken in turn from a counter (the last op's), so a thread
            // slowed by another process takes fewer.
            let next = &st.counters[st.counters.len() - 1];
            self.pool.broadcast(&|tid| {
                let Some(&base) = bases.get(tid) else {
                    return;
                };
                loop {
                    let img = next.fetch_add(1, Ordering::Relaxed);
                    if img >= n {
                        break;
                    }
                    let mut last = Instant::now();
                    for (i, op) in ctx.ops.iter().enumerate() {
                        for row in 0..op.rows() {
                            // SAFETY: this thread alone uses this workspace and
                            // writes this image's output.
                            unsafe { run_item(&ctx, tid, base, op, img, row, 0, 1) };
                        }
                        if tid == 0 {
                            let now = Instant::now();
                            st.times[i]
                                .fetch_add((now - last).as_nanos() as u64, Ordering::Relaxed);
                            last = now;
                        }
                    }
                }
            });
        }
        Ok(())
    }

    /// Time per layer of the last forward pass, in the order they ran.
    pub fn layer_times(&self, net: &Network) -> Vec<LayerTime> {
        let Some(st) = &self.state else {
            return Vec::new();
        };
        st.layout
            .ops
            .iter()
            .zip(&st.layout.names)
            .zip(&st.times)
            .map(|((op, name), t)| LayerTime {
                name: name.clone(),
                time: Duration::from_nanos(t.load(Ordering::Relaxed)),
                macs: op.macs(net),
                executed_macs: op.executed_macs(net),
            })
            .collect()
    }

    /// Plans (or keeps) the buffers for `net` at `h` × `w` with at least
    /// `workspaces` workspaces.
    fn prepare(&mut self, net: &Network, h: usize, w: usize, workspaces: usize) {
        if let Some(st) = &mut self.state
            && st.net == net.id
            && (st.layout.h, st.layout.w) == (h, w)
        {
            if st.arenas.len() < workspaces {
                while st.arenas.len() < workspaces {
                    st.arenas.push(Aligned::zeros(st.layout.len));
                }
                st.bases = st
                    .arenas
                    .iter_mut()
                    .map(|a| Ptr(a.as_mut_slice().as_mut_ptr()))
                    .collect();
            }
            return;
        }
        let layout = Layout::build(net, h, w);
        let mut arenas: Vec<Aligned> = (0..workspaces)
            .map(|_| Aligned::zeros(layout.len))
            .collect();
        let bases = arenas
            .iter_mut()
            .map(|a| Ptr(a.as_mut_slice().as_mut_ptr()))
            .collect();
        let ops = layout.ops.len();
        let mut scratch: Vec<Aligned> = (0..self.pool.threads())
            .map(|_| Aligned::zeros(layout.scratch))
            .collect();
        let scratch_ptrs = scratch
            .iter_mut()
            .map(|a| Ptr(a.as_mut_slice().as_mut_ptr()))
            .collect();
        self.state = Some(State {
            net: net.id,
            layout,
            arenas,
            bases,
            _scratch: scratch,
            scratch_ptrs,
            counters: (0..ops).map(|_| AtomicUsize::new(0)).collect(),
            times: (0..ops).map(|_| AtomicU64::new(0)).collect(),
            barrier: Barrier::new(self.pool.threads()),
        });
    }
}

/// Into how many parts an op's rows are cut across its channel blocks when the
/// threads share it: rows alone on large maps (plenty of them, each short), rows ×
/// blocks on smaller ones, so that the threads end a layer within a small piece
/// of work of each other.
fn groups_of(op: &Op, ctx: &Ctx<'_>, threads: usize) -> usize {
    match op {
        Op::Conv {
            dst, wino: true, ..
        } if threads > 1 => wino_chunks(ctx.kernels, dst.w).0.max(1),
        Op::Conv { conv, dst, .. } if threads > 1 && dst.h < 64 * threads => {
            ctx.convs[*conv].blocks.len()
        }
        _ => 1,
    }
}

/// How a row of `wo` output pixels is cut for a Winograd convolution: (chunks,
/// most 2×2 tiles per chunk), the tiles shared evenly.
fn wino_chunks(k: &Kernels, wo: usize) -> (usize, usize) {
    let tiles = wo / 2;
    if tiles == 0 {
        return (0, 0);
    }
    let chunks = tiles.div_ceil(k.wino_tiles());
    (chunks, tiles.div_ceil(chunks))
}

/// Runs row `row` (a pair of rows for a Winograd convolution) of `op` for image
/// `img` (part `group` of `groups`: a group of channel blocks, or a chunk of
/// tiles for a Winograd convolution), in the workspace at `base`, on thread
/// `tid` (whose scratch it uses).
///
/// # Safety
/// `base` is a workspace planned for `ctx.ops`; no other thread runs the same
/// (op, image, row, group) at the same time, and the ops before this one have
/// completed for this workspace.
#[allow(clippy::too_many_arguments)]
unsafe fn run_item(
    ctx: &Ctx<'_>,
    tid: usize,
    base: Ptr,
    op: &Op,
    img: usize,
    row: usize,
    group: usize,
    groups: usize,
) {
    let base = base.0;
    // SAFETY (whole body): every offset comes from the plan's views, inside the
    // workspace; the rows of an op's destination are disjoint between items.
    unsafe {
        match *op {
            Op::Input { dst } => {
                let plane = ctx.h * ctx.w;
                let src = ctx.input.add(img * 3 * plane + row * ctx.w);
                let d = base.add(dst.at(row + 1, 1));
                for x in 0..ctx.w {
                    for c in 0..3 {
                        *d.add(x * dst.ctot + c) = *src.add(c * plane + x);
                    }
                }
            }
            Op::Conv {
                conv,
                src,
                dst,
                res,
                act,
                wino: true,
            } => {
                let p = &ctx.convs[conv];
                let scratch = ctx.scratch[tid].0;
                wino_rows(
                    ctx.kernels,
                    p,
                    base,
                    scratch,
                    (src, dst, res),
                    act,
                    row,
                    (group, groups),
                );
            }
            Op::Conv {
                conv,
                src,
                dst,
                res,
                act,
                wino: false,
            } => {
                let p = &ctx.convs[conv];
                let blocks = &p.blocks;
                let (from, to) = if groups == 1 {
                    (0, blocks.len())
                } else {
                    (group, group + 1)
                };
                conv_row(
                    ctx.kernels,
                    p,
                    base,
                    (src, dst, res),
                    act,
                    row,
                    from..to,
                    0..dst.w,
                );
            }
            Op::MaxPool5 { src, dst } => {
                let c = src.c;
                let d = base.add(dst.at(row + 1, 1));
                let (y0, y1) = (row.saturating_sub(2), (row + 3).min(src.h));
                for x in 0..src.w {
                    let (x0, x1) = (x.saturating_sub(2), (x + 3).min(src.w));
                    let out = std::slice::from_raw_parts_mut(d.add(x * dst.ctot), c);
                    out.fill(f32::NEG_INFINITY);
                    for yy in y0..y1 {
                        for xx in x0..x1 {
                            let s = std::slice::from_raw_parts(base.add(src.at(yy + 1, xx + 1)), c);
                            for (o, &v) in out.iter_mut().zip(s) {
                                *o = o.max(v);
                            }
                        }
                    }
                }
            }
            Op::Upsample2 { src, dst } => {
                let c = src.c;
                for x in 0..dst.w {
                    let s = base.add(src.at(row / 2 + 1, x / 2 + 1));
                    let d = base.add(dst.at(row + 1, x + 1));
                    std::ptr::copy_nonoverlapping(s, d, c);
                }
            }
            Op::Scores { src, anchor0 } => {
                let out = ctx.out.0.add(img * ctx.rows * ctx.anchors);
                let a0 = anchor0 + row * src.w;
                let s = base.add(src.at(row + 1, 1));
                // Class by class: each output row is written in one run (the
                // row's scores, read across, stay in the cache).
                for k in 0..src.c {
                    let o = out.add((4 + k) * ctx.anchors + a0);
                    for x in 0..src.w {
                        *o.add(x) = *s.add(x * src.ctot + k);
                    }
                }
            }
            Op::Boxes {
                src,
                anchor0,
                stride,
            } => {
                let out = ctx.out.0.add(img * ctx.rows * ctx.anchors);
                (ctx.kernels.boxes)(&BoxRow {
                    src: base.add(src.at(row + 1, 1)),
                    px_stride: src.ctot,
                    w: src.w,
                    row,
                    out: out.add(anchor0 + row * src.w),
                    anchors: ctx.anchors,
                    stride,
                    proj: ctx.proj.as_ptr(),
                });
            }
        }
    }
}

/// Output rows `2 * pair` and `2 * pair + 1` of a Winograd convolution (its
/// chunks of 2×2 tiles: chunk `group` of `groups`, or all when `groups` is 1),
/// with `scratch` for the transforms. An odd last row, and an odd last column,
/// go to the direct kernel.
///
/// # Safety
/// As [`run_item`]; `scratch` holds [`super::plan::wino_scratch`] floats for
/// this convolution and no other thread uses it.
#[allow(clippy::too_many_arguments)]
unsafe fn wino_rows(
    k: &Kernels,
    p: &PackedConv,
    base: *mut f32,
    scratch: *mut f32,
    (src, dst, res): (View, View, Option<View>),
    act: Act,
    pair: usize,
    (group, groups): (usize, usize),
) {
    /// The bias of the products (the output transform adds the real one).
    static ZERO: [f32; 32] = [0.0; 32];
    let views = (src, dst, res);
    let all = 0..p.blocks.len();
    let y0 = 2 * pair;
    // SAFETY (whole body): as the caller guarantees; the tiles' patches stay
    // inside the source buffer (rows y0..y0 + 4 and columns up to 2 * tiles + 2
    // in border coordinates, within its (h + 2) × (w + 2)).
    unsafe {
        if y0 + 1 >= dst.h {
            if group == 0 {
                conv_row(k, p, base, views, act, y0, all, 0..dst.w);
            }
            return;
        }
        let Some(u) = &p.wino else {
            unreachable!("a Winograd op has Winograd weights")
        };
        let u = u.as_slice().as_ptr();
        let (chunks, per) = wino_chunks(k, dst.w);
        let t_max = k.wino_tiles();
        let (ic, ocp) = (p.ic, p.oc_padded(k.lanes));
        let v = scratch;
        // The products follow the inputs (see `wino_scratch`).
        let m = scratch.add((16 * t_max * ic).next_multiple_of(16));
        let (v_xi, m_xi) = (t_max * ic, t_max * ocp);
        let range = if groups == 1 {
            0..chunks
        } else {
            group..(group + 1).min(chunks)
        };
        for q in range {
            let t0 = q * per;
            let nt = per.min(dst.w / 2 - t0);
            (k.wino_in)(&WinoIn {
                inp: base.add(src.at(y0, 2 * t0)),
                row_stride: src.row_stride(),
                px_stride: src.ctot,
                ic,
                tiles: nt,
                v,
                xi_stride: v_xi,
            });
            for blk in &p.blocks {
                let bw = blk.nv * k.lanes;
                let fns = &k.tiles[blk.nv - 1];
                let pm = k.pmax[blk.nv - 1];
                let parts = nt.div_ceil(pm);
                let pt = nt.div_ceil(parts);
                for xi in 0..16 {
                    let mut s0 = 0;
                    while s0 < nt {
                        let np = pt.min(nt - s0);
                        (fns[np - 1])(&Tile {
                            inp: v.add(xi * v_xi + s0 * ic),
                            px_stride: ic,
                            row_stride: 0,
                            tap_stride: 0,
                            k: 1,
                            ic,
                            w: u.add(blk.u_off + xi * ic * bw),
                            bias: ZERO.as_ptr(),
                            out: m.add(xi * m_xi + s0 * ocp + blk.oc0),
                            out_stride: ocp,
                            res: std::ptr::null(),
                            res_stride: 0,
                            nvalid: bw,
                            act: Act::None,
                        });
                        s0 += np;
                    }
                }
            }
            let (r, r_row, r_px) = match res {
                Some(r) => (
                    base.add(r.at(y0 + 1, 2 * t0 + 1)).cast_const(),
                    r.row_stride(),
                    r.ctot,
                ),
                None => (std::ptr::null(), 0, 0),
            };
            (k.wino_out)(&WinoOut {
                m,
                xi_stride: m_xi,
                ocp,
                tiles: nt,
                oc: p.oc,
                bias: p.bias.as_slice().as_ptr(),
                out: base.add(dst.at(y0 + 1, 2 * t0 + 1)),
                out_row_stride: dst.row_stride(),
                out_px_stride: dst.ctot,
                res: r,
                res_row_stride: r_row,
                res_px_stride: r_px,
                act,
            });
        }
        let last = groups == 1 || group + 1 >= chunks;
        if dst.w % 2 == 1 && last {
            for y in [y0, y0 + 1] {
                conv_row(k, p, base, views, act, y, all.clone(), dst.w - 1..dst.w);
            }
        }
    }
}

/// One output row of a convolution, for the channel blocks `blocks` and the
/// output pixels `xs`.
///
/// # Safety
/// As [`run_item`].
#[allow(clippy::too_many_arguments)]
unsafe fn conv_row(
    k: &Kernels,
    p: &PackedConv,
    base: *mut f32,
    (src, dst, res): (View, View, Option<View>),
    act: Act,
    row: usize,
    blocks: std::ops::Range<usize>,
    xs: std::ops::Range<usize>,
) {
    let (s, pad) = (p.stride, p.k / 2);
    // SAFETY (whole body): the taps of every tile stay inside the source
    // buffer (its border is the padding), the stores inside the row.
    unsafe {
        let in_row = base.add(src.at(row * s + 1 - pad, 1 - pad));
        let out_row = base.add(dst.at(row + 1, 1));
        let (res_row, res_stride) = match res {
            Some(r) => (base.add(r.at(row + 1, 1)).cast_const(), r.ctot),
            None => (std::ptr::null(), 0),
        };
        let wts = p.weights.as_slice().as_ptr();
        let bias = p.bias.as_slice().as_ptr();
        let wo = xs.end;
        for blk in &p.blocks[blocks] {
            let fns = &k.tiles[blk.nv - 1];
            let pm = k.pmax[blk.nv - 1];
            let ntiles = xs.len().div_ceil(pm);
            let pt = xs.len().div_ceil(ntiles);
            let mut x0 = xs.start;
            while x0 < wo {
                let np = pt.min(wo - x0);
                let t = Tile {
                    inp: in_row.add(x0 * s * src.ctot),
                    px_stride: s * src.ctot,
                    row_stride: src.row_stride(),
                    tap_stride: src.ctot,
                    k: p.k,
                    ic: p.ic,
                    w: wts.add(blk.w_off),
                    bias: bias.add(blk.b_off),
                    out: out_row.add(x0 * dst.ctot + blk.oc0),
                    out_stride: dst.ctot,
                    res: if res_row.is_null() {
                        res_row
                    } else {
                        res_row.add(x0 * res_stride + blk.oc0)
                    },
                    res_stride,
                    nvalid: blk.nvalid,
                    act,
                };
                (fns[np - 1])(&t);
                x0 += np;
            }
        }
    }
}

/// See [`super::conv2d`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
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
    let kernels = Kernels::new(set)?;
    if !(k == 1 || k == 3) || stride == 0 || h == 0 || w == 0 {
        return Err(InferError::Options(format!(
            "conv2d: kernel {k}, stride {stride} at {h}x{w} is not supported (1 or 3, stride >= 1)"
        )));
    }
    let pad = k / 2;
    let (ho, wo) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    if x.len() != n * ic * h * w
        || weight.len() != oc * ic * k * k
        || bias.len() != oc
        || residual.is_some_and(|r| r.len() != n * oc * ho * wo)
    {
        return Err(InferError::Options("conv2d: tensor sizes disagree".into()));
    }
    let conv = PackedConv::pack("conv", weight, bias, (oc, ic, k), stride, kernels.lanes);
    let vin = View {
        off: 0,
        h,
        w,
        ctot: ic,
        coff: 0,
        c: ic,
    };
    let in_len = View::buffer_len(h, w, ic).next_multiple_of(16);
    let vout = View {
        off: in_len,
        h: ho,
        w: wo,
        ctot: oc,
        coff: 0,
        c: oc,
    };
    let out_len = View::buffer_len(ho, wo, oc).next_multiple_of(16);
    let vres = View {
        off: in_len + out_len,
        ..vout
    };
    let mut arena = Aligned::zeros(in_len + 2 * out_len);
    let op = Op::Conv {
        conv: 0,
        src: vin,
        dst: vout,
        res: residual.map(|_| vres),
        act,
        wino: conv.wino.is_some(),
    };
    let pool = Pool::new(threads.max(1));
    let scratch_len = super::plan::wino_scratch(&kernels, &conv);
    let mut scratch: Vec<Aligned> = (0..pool.threads())
        .map(|_| Aligned::zeros(scratch_len))
        .collect();
    let scratch: Vec<Ptr> = scratch
        .iter_mut()
        .map(|a| Ptr(a.as_mut_slice().as_mut_ptr()))
        .collect();
    let mut y = vec![0f32; n * oc * ho * wo];
    let convs = [conv];
    let proj = [0f32; 16];
    for img in 0..n {
        let a = arena.as_mut_slice();
        for c in 0..ic {
            for yy in 0..h {
                for xx in 0..w {
                    a[vin.at(yy + 1, xx + 1) + c] = x[((img * ic + c) * h + yy) * w + xx];
                }
            }
        }
        if let Some(r) = residual {
            for c in 0..oc {
                for yy in 0..ho {
                    for xx in 0..wo {
                        a[vres.at(yy + 1, xx + 1) + c] = r[((img * oc + c) * ho + yy) * wo + xx];
                    }
                }
            }
        }
        let base = Ptr(a.as_mut_ptr());
        let ctx = Ctx {
            kernels: &kernels,
            convs: &convs,
            proj: &proj,
            ops: std::slice::from_ref(&op),
            scratch: &scratch,
            input: x.as_ptr(),
            out: Ptr(y.as_mut_ptr()),
            rows: 0,
            anchors: 0,
            h,
            w,
        };
        let groups = groups_of(&op, &ctx, pool.threads());
        let items = op.rows() * groups;
        let next = AtomicUsize::new(0);
        pool.broadcast(&|tid| {
            loop {
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= items {
                    break;
                }
                // SAFETY: each item is claimed once; the arena is planned for `op`,
                // the scratch for its Winograd transforms.
                unsafe {
                    run_item(
                        &ctx,
                        tid,
                        base,
                        &op,
                        0,
                        item / groups,
                        item % groups,
                        groups,
                    )
                };
            }
        });
        let a = arena.as_slice();
        for c in 0..oc {
            for yy in 0..ho {
                for xx in 0..wo {
                    y[((img * oc + c) * ho + yy) * wo + xx] = a[vout.at(yy + 1, xx + 1) + c];
                }
            }
        }
    }
    Ok(y)
}
