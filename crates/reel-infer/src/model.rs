//! The YOLOv8 detection network (backbone, neck, head with DFL) on candle tensors,
//! written from ultralytics' `yolov8.yaml`: layer indices below are that file's.
//!
//! Every convolution block is a convolution with its batch-norm folded in at load
//! time, followed by SiLU. The output is what ultralytics' `Detect` layer returns at
//! inference: `[batch, 4 + classes, anchors]`, rows 0-3 the box centre and size in
//! input pixels, the rest the class scores after the sigmoid.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use candle_core::{DType, Device, Tensor};

use crate::InferError;
use crate::cpu::{self, C2fIds, Graph, HeadIds, KernelSet, Runner};
use crate::weights::Weights;

/// Bins of the distribution each box side is predicted as (DFL).
const REG_MAX: usize = 16;
/// Strides of the three detection levels.
const STRIDES: [usize; 3] = [8, 16, 32];

/// The size of a YOLOv8 model: depth and width multiples and the channel cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Nano.
    N,
    /// Small.
    S,
    /// Medium.
    M,
    /// Large.
    L,
    /// Extra large.
    X,
}

impl Variant {
    /// All of them, smallest first.
    pub const ALL: [Variant; 5] = [Variant::N, Variant::S, Variant::M, Variant::L, Variant::X];

    /// `n`, `s`, `m`, `l` or `x`.
    pub fn letter(self) -> char {
        match self {
            Variant::N => 'n',
            Variant::S => 's',
            Variant::M => 'm',
            Variant::L => 'l',
            Variant::X => 'x',
        }
    }

    /// The variant of a letter.
    pub fn from_letter(c: char) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.letter() == c.to_ascii_lowercase())
    }

    /// (depth multiple, width multiple, most channels) from `yolov8.yaml`'s scales.
    fn scales(self) -> (f64, f64, usize) {
        match self {
            Variant::N => (0.33, 0.25, 1024),
            Variant::S => (0.33, 0.50, 1024),
            Variant::M => (0.67, 0.75, 768),
            Variant::L => (1.00, 1.00, 512),
            Variant::X => (1.00, 1.25, 512),
        }
    }

    /// Output channels of a layer the yaml gives `c` for.
    fn ch(self, c: usize) -> usize {
        let (_, w, max) = self.scales();
        let x = c.min(max) as f64 * w;
        ((x / 8.0).ceil() as usize) * 8
    }

    /// Repeats of a block the yaml gives `n` for.
    fn repeats(self, n: usize) -> usize {
        let (d, _, _) = self.scales();
        ((n as f64 * d).round_ties_even() as usize).max(1)
    }

    /// The variant whose first convolution has `c` output channels.
    fn from_stem_channels(c: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.ch(64) == c)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "yolov8{}", self.letter())
    }
}

/// Convolution (batch-norm folded in) + SiLU.
struct ConvBlock {
    name: String,
    w: Tensor,
    b: Tensor,
    stride: usize,
    pad: usize,
}

impl ConvBlock {
    fn load(
        wts: &Weights,
        prefix: &str,
        c1: usize,
        c2: usize,
        k: usize,
        stride: usize,
    ) -> Result<Self, InferError> {
        let (w, b) = wts.conv_bn(prefix, c1, c2, k)?;
        Ok(Self {
            name: prefix.to_string(),
            w,
            b,
            stride,
            pad: k / 2,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.conv2d(&self.w, self.pad, self.stride, 1, 1)?
            .broadcast_add(&self.b)?
            .silu()
    }
}

/// Two 3x3 blocks, with the input added back when shapes allow.
struct Bottleneck {
    cv1: ConvBlock,
    cv2: ConvBlock,
    residual: bool,
}

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.cv2.forward(&self.cv1.forward(x)?)?;
        if self.residual { x + y } else { Ok(y) }
    }
}

/// CSP bottleneck with two convolutions (ultralytics' `C2f`).
struct C2f {
    cv1: ConvBlock,
    cv2: ConvBlock,
    m: Vec<Bottleneck>,
    c: usize,
}

impl C2f {
    fn load(
        wts: &Weights,
        prefix: &str,
        c1: usize,
        c2: usize,
        n: usize,
        shortcut: bool,
    ) -> Result<Self, InferError> {
        let c = c2 / 2;
        let cv1 = ConvBlock::load(wts, &format!("{prefix}.cv1"), c1, 2 * c, 1, 1)?;
        let cv2 = ConvBlock::load(wts, &format!("{prefix}.cv2"), (2 + n) * c, c2, 1, 1)?;
        let m = (0..n)
            .map(|i| {
                Ok(Bottleneck {
                    cv1: ConvBlock::load(wts, &format!("{prefix}.m.{i}.cv1"), c, c, 3, 1)?,
                    cv2: ConvBlock::load(wts, &format!("{prefix}.m.{i}.cv2"), c, c, 3, 1)?,
                    residual: shortcut,
                })
            })
            .collect::<Result<_, InferError>>()?;
        Ok(Self { cv1, cv2, m, c })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.cv1.forward(x)?;
        // The reference splits `y` in two halves along the channels and concatenates
        // them again with the bottlenecks' outputs: concatenating `y` whole is the
        // same and copies nothing more.
        let mut parts = Vec::with_capacity(self.m.len() + 1);
        let mut last = y.narrow(1, self.c, self.c)?;
        parts.push(y);
        for b in &self.m {
            last = b.forward(&last)?;
            parts.push(last.clone());
        }
        self.cv2.forward(&Tensor::cat(&parts, 1)?)
    }
}

/// Spatial pyramid pooling, fast (three chained 5x5 max-pools).
struct Sppf {
    cv1: ConvBlock,
    cv2: ConvBlock,
}

/// A 5x5 max-pool, stride 1, "same" size, padded with -inf as PyTorch's max-pool
/// pads (zeros would win over negative activations at the borders).
fn max_pool5(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let p = 2;
    let side = Tensor::full(f32::NEG_INFINITY, (b, c, h, p), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&side, x, &side], 3)?;
    let band =
        Tensor::full(f32::NEG_INFINITY, (b, c, p, w + 2 * p), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&band, &x, &band], 2)?;
    x.max_pool2d_with_stride((5, 5), (1, 1))
}

impl Sppf {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.cv1.forward(x)?;
        let y1 = max_pool5(&x)?;
        let y2 = max_pool5(&y1)?;
        let y3 = max_pool5(&y2)?;
        self.cv2.forward(&Tensor::cat(&[&x, &y1, &y2, &y3], 1)?)
    }
}

/// One level of the head: two blocks and a 1x1 convolution with bias.
struct Branch {
    name: String,
    b0: ConvBlock,
    b1: ConvBlock,
    w: Tensor,
    b: Tensor,
}

impl Branch {
    fn load(
        wts: &Weights,
        prefix: &str,
        c_in: usize,
        c_mid: usize,
        c_out: usize,
    ) -> Result<Self, InferError> {
        let b0 = ConvBlock::load(wts, &format!("{prefix}.0"), c_in, c_mid, 3, 1)?;
        let b1 = ConvBlock::load(wts, &format!("{prefix}.1"), c_mid, c_mid, 3, 1)?;
        let name = format!("{prefix}.2");
        let (w, b) = wts.conv_bias(&name, c_mid, c_out, 1)?;
        Ok(Self { name, b0, b1, w, b })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.b1.forward(&self.b0.forward(x)?)?;
        y.conv2d(&self.w, 0, 1, 1, 1)?.broadcast_add(&self.b)
    }
}

/// The detection head (ultralytics' `Detect`).
struct Head {
    box_branches: Vec<Branch>,
    cls_branches: Vec<Branch>,
    /// DFL projection `[1, 1, 16, 1]` (0..16 in the reference weights).
    proj: Tensor,
    nc: usize,
}

impl Head {
    fn load(wts: &Weights, ch: [usize; 3], nc: usize) -> Result<Self, InferError> {
        let c2 = 16.max(ch[0] / 4).max(REG_MAX * 4);
        let c3 = ch[0].max(nc.min(100));
        let mut box_branches = Vec::with_capacity(3);
        let mut cls_branches = Vec::with_capacity(3);
        for (i, &c) in ch.iter().enumerate() {
            box_branches.push(Branch::load(
                wts,
                &format!("model.22.cv2.{i}"),
                c,
                c2,
                4 * REG_MAX,
            )?);
            cls_branches.push(Branch::load(wts, &format!("model.22.cv3.{i}"), c, c3, nc)?);
        }
        let proj = wts.cpu_f32("model.22.dfl.conv.weight", &[1, REG_MAX, 1, 1])?;
        let proj = wts.place(&proj.reshape((1, 1, REG_MAX, 1))?)?;
        Ok(Self {
            box_branches,
            cls_branches,
            proj,
            nc,
        })
    }

    fn forward(&self, feats: [&Tensor; 3]) -> candle_core::Result<Tensor> {
        let b = feats[0].dim(0)?;
        let mut boxes = Vec::with_capacity(3);
        let mut scores = Vec::with_capacity(3);
        let mut sizes = [(0, 0); 3];
        for (i, x) in feats.iter().enumerate() {
            let (_, _, h, w) = x.dims4()?;
            sizes[i] = (h, w);
            boxes.push(
                self.box_branches[i]
                    .forward(x)?
                    .reshape((b, 4 * REG_MAX, h * w))?,
            );
            scores.push(
                self.cls_branches[i]
                    .forward(x)?
                    .reshape((b, self.nc, h * w))?,
            );
        }
        let boxes = Tensor::cat(&boxes, 2)?;
        let scores = Tensor::cat(&scores, 2)?;
        let a = boxes.dim(2)?;
        // DFL: each side is the expectation of a softmax over 16 bins.
        let dist = candle_nn::ops::softmax(&boxes.reshape((b, 4, REG_MAX, a))?, 2)?
            .broadcast_mul(&self.proj)?
            .sum(2)?;
        let (anchors, strides) = anchors(&sizes, boxes.device(), boxes.dtype())?;
        let lt = dist.narrow(1, 0, 2)?;
        let rb = dist.narrow(1, 2, 2)?;
        let x1y1 = anchors.broadcast_sub(&lt)?;
        let x2y2 = anchors.broadcast_add(&rb)?;
        let cxy = ((&x1y1 + &x2y2)? / 2.0)?;
        let wh = (x2y2 - x1y1)?;
        let dbox = Tensor::cat(&[cxy, wh], 1)?.broadcast_mul(&strides)?;
        Tensor::cat(&[dbox, candle_nn::ops::sigmoid(&scores)?], 1)
    }
}

/// Anchor centres `[1, 2, A]` (x then y, in grid cells, +0.5) and strides
/// `[1, 1, A]` for feature maps of these sizes, row-major per level.
fn anchors(
    sizes: &[(usize, usize); 3],
    device: &Device,
    dtype: DType,
) -> candle_core::Result<(Tensor, Tensor)> {
    let a: usize = sizes.iter().map(|(h, w)| h * w).sum();
    let mut xs = Vec::with_capacity(2 * a);
    let mut ys = Vec::with_capacity(a);
    let mut st = Vec::with_capacity(a);
    for (&(h, w), &s) in sizes.iter().zip(&STRIDES) {
        for y in 0..h {
            for x in 0..w {
                xs.push(x as f32 + 0.5);
                ys.push(y as f32 + 0.5);
                st.push(s as f32);
            }
        }
    }
    xs.extend_from_slice(&ys);
    let anchors = Tensor::from_vec(xs, (1, 2, a), device)?.to_dtype(dtype)?;
    let strides = Tensor::from_vec(st, (1, 1, a), device)?.to_dtype(dtype)?;
    Ok((anchors, strides))
}

/// A loaded YOLOv8 detector.
pub struct YoloV8 {
    variant: Variant,
    nc: usize,
    device: Device,
    dtype: DType,
    l0: ConvBlock,
    l1: ConvBlock,
    l2: C2f,
    l3: ConvBlock,
    l4: C2f,
    l5: ConvBlock,
    l6: C2f,
    l7: ConvBlock,
    l8: C2f,
    l9: Sppf,
    l12: C2f,
    l15: C2f,
    l16: ConvBlock,
    l18: C2f,
    l19: ConvBlock,
    l21: C2f,
    head: Head,
    /// The CPU engine, when the model runs on the CPU in f32 with it.
    engine: Option<Engine>,
}

/// The CPU engine's network and a runner for [`YoloV8::forward`]'s tensor calls
/// (detectors keep runners of their own).
struct Engine {
    net: cpu::Network,
    runner: Mutex<Runner>,
}

/// Gathers the convolutions of the candle network for the CPU engine.
#[derive(Default)]
#[allow(clippy::type_complexity)]
struct EngineBuilder {
    convs: Vec<(String, Vec<f32>, Vec<f32>, (usize, usize, usize), usize)>,
}

impl EngineBuilder {
    fn add(
        &mut self,
        name: &str,
        w: &Tensor,
        b: &Tensor,
        stride: usize,
    ) -> Result<usize, InferError> {
        let (oc, ic, k, _) = w.dims4()?;
        let w: Vec<f32> = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let b: Vec<f32> = b.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        self.convs
            .push((name.to_string(), w, b, (oc, ic, k), stride));
        Ok(self.convs.len() - 1)
    }

    fn block(&mut self, c: &ConvBlock) -> Result<usize, InferError> {
        self.add(&c.name, &c.w, &c.b, c.stride)
    }

    fn c2f(&mut self, m: &C2f) -> Result<C2fIds, InferError> {
        let cv1 = self.block(&m.cv1)?;
        let mut ids = Vec::with_capacity(m.m.len());
        let mut shortcut = false;
        for b in &m.m {
            ids.push((self.block(&b.cv1)?, self.block(&b.cv2)?));
            shortcut = b.residual;
        }
        let cv2 = self.block(&m.cv2)?;
        Ok(C2fIds {
            cv1,
            cv2,
            m: ids,
            shortcut,
            c: m.c,
        })
    }

    fn branch(&mut self, b: &Branch) -> Result<[usize; 3], InferError> {
        Ok([
            self.block(&b.b0)?,
            self.block(&b.b1)?,
            self.add(&b.name, &b.w, &b.b, 1)?,
        ])
    }
}

impl fmt::Debug for YoloV8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YoloV8")
            .field("variant", &self.variant)
            .field("classes", &self.nc)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .field("kernels", &self.kernel_set())
            .finish_non_exhaustive()
    }
}

impl YoloV8 {
    /// Builds the network from `wts`. The variant is read from the weights' shapes
    /// unless given; the number of classes from the head's class convolution. Any
    /// tensor missing or of another shape than the variant needs is an error naming
    /// it.
    pub fn load(wts: &Weights, variant: Option<Variant>) -> Result<Self, InferError> {
        let stem = wts.shape_of("model.0.conv.weight");
        let variant = match variant {
            Some(v) => v,
            None => {
                let c = stem
                    .as_ref()
                    .and_then(|s| s.first().copied())
                    .ok_or_else(|| InferError::MissingTensor {
                        path: wts.path().to_path_buf(),
                        tensor: wts.file_name("model.0.conv.weight"),
                        expected: vec![16, 3, 3, 3],
                    })?;
                Variant::from_stem_channels(c).ok_or_else(|| InferError::BadModel {
                    path: wts.path().to_path_buf(),
                    message: format!(
                        "the first convolution has {c} output channels, which is no YOLOv8 size (16 n, 32 s, 48 m, 64 l, 80 x)"
                    ),
                })?
            }
        };
        let nc = match wts.shape_of("model.22.cv3.0.2.bias").as_deref() {
            Some([n]) if *n > 0 => *n,
            _ => 80,
        };
        let v = variant;
        let (c64, c128, c256, c512, c1024) =
            (v.ch(64), v.ch(128), v.ch(256), v.ch(512), v.ch(1024));
        let (n3, n6) = (v.repeats(3), v.repeats(6));
        let conv = |i: u32, c1, c2, k, s| ConvBlock::load(wts, &format!("model.{i}"), c1, c2, k, s);
        let c2f = |i: u32, c1, c2, n, sc| C2f::load(wts, &format!("model.{i}"), c1, c2, n, sc);
        let l9 = Sppf {
            cv1: ConvBlock::load(wts, "model.9.cv1", c1024, c1024 / 2, 1, 1)?,
            cv2: ConvBlock::load(wts, "model.9.cv2", c1024 / 2 * 4, c1024, 1, 1)?,
        };
        let mut net = Self {
            variant,
            nc,
            device: wts.device().clone(),
            dtype: wts.dtype(),
            l0: conv(0, 3, c64, 3, 2)?,
            l1: conv(1, c64, c128, 3, 2)?,
            l2: c2f(2, c128, c128, n3, true)?,
            l3: conv(3, c128, c256, 3, 2)?,
            l4: c2f(4, c256, c256, n6, true)?,
            l5: conv(5, c256, c512, 3, 2)?,
            l6: c2f(6, c512, c512, n6, true)?,
            l7: conv(7, c512, c1024, 3, 2)?,
            l8: c2f(8, c1024, c1024, n3, true)?,
            l9,
            l12: c2f(12, c1024 + c512, c512, n3, false)?,
            l15: c2f(15, c512 + c256, c256, n3, false)?,
            l16: conv(16, c256, c256, 3, 2)?,
            l18: c2f(18, c256 + c512, c512, n3, false)?,
            l19: conv(19, c512, c512, 3, 2)?,
            l21: c2f(21, c512 + c1024, c1024, n3, false)?,
            head: Head::load(wts, [c256, c512, c1024], nc)?,
            engine: None,
        };
        if net.device.is_cpu() && net.dtype == DType::F32 {
            let set = cpu::kernel_set()?;
            if set != KernelSet::Candle {
                net.engine = Some(Engine {
                    net: net.build_cpu_network(set)?,
                    runner: Mutex::new(Runner::new(0)),
                });
            }
        }
        Ok(net)
    }

    /// The network packed for the CPU engine with the kernels `set` (the weights
    /// copied out of the candle tensors and packed).
    pub fn build_cpu_network(&self, set: KernelSet) -> Result<cpu::Network, InferError> {
        let mut b = EngineBuilder::default();
        let l0 = b.block(&self.l0)?;
        let l1 = b.block(&self.l1)?;
        let l2 = b.c2f(&self.l2)?;
        let l3 = b.block(&self.l3)?;
        let l4 = b.c2f(&self.l4)?;
        let l5 = b.block(&self.l5)?;
        let l6 = b.c2f(&self.l6)?;
        let l7 = b.block(&self.l7)?;
        let l8 = b.c2f(&self.l8)?;
        let l9 = (b.block(&self.l9.cv1)?, b.block(&self.l9.cv2)?);
        let l12 = b.c2f(&self.l12)?;
        let l15 = b.c2f(&self.l15)?;
        let l16 = b.block(&self.l16)?;
        let l18 = b.c2f(&self.l18)?;
        let l19 = b.block(&self.l19)?;
        let l21 = b.c2f(&self.l21)?;
        let mut head = [HeadIds {
            boxes: [0; 3],
            cls: [0; 3],
        }; 3];
        for (i, h) in head.iter_mut().enumerate() {
            h.boxes = b.branch(&self.head.box_branches[i])?;
            h.cls = b.branch(&self.head.cls_branches[i])?;
        }
        let proj: Vec<f32> = self
            .head
            .proj
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let mut p = [0f32; REG_MAX];
        p.copy_from_slice(&proj);
        let graph = Graph {
            l0,
            l1,
            l2,
            l3,
            l4,
            l5,
            l6,
            l7,
            l8,
            l9,
            l12,
            l15,
            l16,
            l18,
            l19,
            l21,
            head,
        };
        cpu::Network::new(set, &b.convs, graph, self.nc, p)
    }

    /// The CPU engine's network, when the model runs with it (on the CPU in f32,
    /// unless `REEL_CPU_KERNELS=candle`).
    pub fn cpu_network(&self) -> Option<&cpu::Network> {
        self.engine.as_ref().map(|e| &e.net)
    }

    /// What runs the convolutions: the CPU engine's kernel set, or
    /// [`KernelSet::Candle`] (on a GPU, or when asked for).
    pub fn kernel_set(&self) -> KernelSet {
        self.cpu_network()
            .map_or(KernelSet::Candle, cpu::Network::kernel_set)
    }

    /// The model's size.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Number of classes the head predicts.
    pub fn num_classes(&self) -> usize {
        self.nc
    }

    /// Where it runs.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision of its weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs a batch `[b, 3, h, w]` (RGB in 0..1, `h` and `w` multiples of 32) and
    /// returns `[b, 4 + classes, anchors]` as f32: box centre x, y, width, height in
    /// input pixels, then each class's score. On the CPU engine when the model has
    /// it, else candle's graph.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, InferError> {
        let Some(engine) = &self.engine else {
            return self.forward_candle(x);
        };
        let (n, c, h, w) = x.dims4()?;
        if c != 3 {
            return Err(InferError::Options(format!(
                "the input must be [batch, 3, h, w], not [_, {c}, {h}, {w}]"
            )));
        }
        let input: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let anchors = cpu::Network::anchors(h, w);
        let rows = engine.net.rows();
        let mut out = vec![0f32; n * rows * anchors];
        engine
            .runner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run(&engine.net, &input, n, h, w, &mut out)?;
        Ok(Tensor::from_vec(out, (n, rows, anchors), &self.device)?)
    }

    /// [`forward`](Self::forward) through candle's graph, whatever the device:
    /// the reference the CPU engine is tested against.
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor, InferError> {
        let (_, c, h, w) = x.dims4()?;
        if c != 3 || !h.is_multiple_of(32) || !w.is_multiple_of(32) || h == 0 || w == 0 {
            return Err(InferError::Options(format!(
                "the input must be [batch, 3, h, w] with h and w positive multiples of 32, not [_, {c}, {h}, {w}]"
            )));
        }
        let x = x.to_dtype(self.dtype)?;
        let x = self.l1.forward(&self.l0.forward(&x)?)?;
        let x = self.l2.forward(&x)?;
        let p3 = self.l4.forward(&self.l3.forward(&x)?)?;
        let p4 = self.l6.forward(&self.l5.forward(&p3)?)?;
        let x = self.l8.forward(&self.l7.forward(&p4)?)?;
        let p5 = self.l9.forward(&x)?;
        let (h5, w5) = (p5.dim(2)?, p5.dim(3)?);
        let up = p5.upsample_nearest2d(2 * h5, 2 * w5)?;
        let n12 = self.l12.forward(&Tensor::cat(&[&up, &p4], 1)?)?;
        let up = n12.upsample_nearest2d(2 * n12.dim(2)?, 2 * n12.dim(3)?)?;
        let out3 = self.l15.forward(&Tensor::cat(&[&up, &p3], 1)?)?;
        let down = self.l16.forward(&out3)?;
        let out4 = self.l18.forward(&Tensor::cat(&[&down, &n12], 1)?)?;
        let down = self.l19.forward(&out4)?;
        let out5 = self.l21.forward(&Tensor::cat(&[&down, &p5], 1)?)?;
        let y = self.head.forward([&out3, &out4, &out5])?;
        Ok(y.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_repeats_follow_the_yaml() {
        let v = Variant::N;
        assert_eq!(
            (v.ch(64), v.ch(128), v.ch(256), v.ch(512), v.ch(1024)),
            (16, 32, 64, 128, 256)
        );
        assert_eq!((v.repeats(3), v.repeats(6)), (1, 2));
        let m = Variant::M;
        assert_eq!((m.ch(64), m.ch(512), m.ch(1024)), (48, 384, 576));
        assert_eq!((m.repeats(3), m.repeats(6)), (2, 4));
        let x = Variant::X;
        assert_eq!((x.ch(64), x.ch(1024)), (80, 640));
        for v in Variant::ALL {
            assert_eq!(Variant::from_stem_channels(v.ch(64)), Some(v));
        }
    }

    #[test]
    fn max_pool_pads_with_minus_infinity() {
        // All negative: zero padding would put 0 at the borders.
        let x = Tensor::from_vec(
            (0..36).map(|i| -(i as f32) - 1.0).collect::<Vec<_>>(),
            (1, 1, 6, 6),
            &Device::Cpu,
        )
        .unwrap();
        let y = max_pool5(&x).unwrap();
        assert_eq!(y.dims4().unwrap(), (1, 1, 6, 6));
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        // Corner (0,0): max of rows 0..2, cols 0..2 = -1.
        assert_eq!(v[0], -1.0);
        // (5,5): rows 3..5, cols 3..5: the max is element (3,3) = -(3*6+3) - 1 = -22.
        assert_eq!(v[35], -22.0);
        assert!(v.iter().all(|&x| x < 0.0));
    }

    #[test]
    fn anchors_are_cell_centres_row_major() {
        let (a, s) = anchors(&[(2, 3), (1, 2), (1, 1)], &Device::Cpu, DType::F32).unwrap();
        let a: Vec<Vec<f32>> = a.squeeze(0).unwrap().to_vec2().unwrap();
        assert_eq!(a[0], [0.5, 1.5, 2.5, 0.5, 1.5, 2.5, 0.5, 1.5, 0.5]);
        assert_eq!(a[1], [0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 0.5, 0.5, 0.5]);
        let s: Vec<f32> = s.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(s, [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 16.0, 16.0, 32.0]);
    }
}
