//! The YOLOv8 graph lowered to a list of operations over planned buffers, for
//! one input size: where every activation lives in the workspace, which channel
//! slice each layer writes (so concatenations are free), and the order to run
//! them in.

use super::{Act, Kernels, Network, PackedConv};

/// The convolutions of one C2f block (indices into the network's convolutions).
#[derive(Debug, Clone)]
pub(crate) struct C2fIds {
    pub cv1: usize,
    pub cv2: usize,
    /// The bottlenecks' two convolutions.
    pub m: Vec<(usize, usize)>,
    /// Whether the bottlenecks add their input back.
    pub shortcut: bool,
    /// Channels of each chunk (half of cv1's output).
    pub c: usize,
}

/// The convolutions of the head's branches at one level: box (3) and class (3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadIds {
    pub boxes: [usize; 3],
    pub cls: [usize; 3],
}

/// The network's structure (`yolov8.yaml`; numbers are its layer indices).
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub l0: usize,
    pub l1: usize,
    pub l2: C2fIds,
    pub l3: usize,
    pub l4: C2fIds,
    pub l5: usize,
    pub l6: C2fIds,
    pub l7: usize,
    pub l8: C2fIds,
    pub l9: (usize, usize),
    pub l12: C2fIds,
    pub l15: C2fIds,
    pub l16: usize,
    pub l18: C2fIds,
    pub l19: usize,
    pub l21: C2fIds,
    pub head: [HeadIds; 3],
}

/// A channel slice of a planned buffer: `h` × `w` pixels of `ctot` channels
/// (with a zero border of one pixel all round), of which this view is the `c`
/// channels from `coff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub off: usize,
    pub h: usize,
    pub w: usize,
    pub ctot: usize,
    pub coff: usize,
    pub c: usize,
}

impl View {
    /// Floats of a buffer of this shape, border included.
    pub(crate) fn buffer_len(h: usize, w: usize, ctot: usize) -> usize {
        (h + 2) * (w + 2) * ctot
    }

    /// The offset of pixel (`y`, `x`) (border coordinates: the picture starts at
    /// (1, 1)), at the view's first channel.
    #[inline]
    pub(crate) fn at(&self, y: usize, x: usize) -> usize {
        self.off + (y * (self.w + 2) + x) * self.ctot + self.coff
    }

    /// Floats between two rows.
    #[inline]
    pub(crate) fn row_stride(&self) -> usize {
        (self.w + 2) * self.ctot
    }

    /// `c` channels from `coff` of this view.
    pub(crate) fn slice(&self, coff: usize, c: usize) -> Self {
        debug_assert!(coff + c <= self.c);
        Self {
            coff: self.coff + coff,
            c,
            ..*self
        }
    }
}

/// One step of the forward pass.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// The NCHW input image into its buffer.
    Input { dst: View },
    /// A convolution (`conv` indexes the network's), its activation and
    /// residual fused; `wino` when it runs as Winograd F(2×2, 3×3), a pair of
    /// output rows at a time.
    Conv {
        conv: usize,
        src: View,
        dst: View,
        res: Option<View>,
        act: Act,
        wino: bool,
    },
    /// A 5×5 max-pool, stride 1, padded with -inf.
    MaxPool5 { src: View, dst: View },
    /// Nearest-neighbour upsampling by 2.
    Upsample2 { src: View, dst: View },
    /// Class scores (already through the sigmoid) into the output's rows 4…,
    /// anchors from `anchor0`.
    Scores { src: View, anchor0: usize },
    /// DFL and box decoding into the output's rows 0-3.
    Boxes {
        src: View,
        anchor0: usize,
        stride: f32,
    },
}

impl Op {
    /// The output rows (of pixels) the op produces, or pairs of them for a
    /// Winograd convolution: its unit of work.
    pub(crate) fn rows(&self) -> usize {
        match self {
            Op::Input { dst } => dst.h,
            Op::Conv { dst, wino, .. } => {
                if *wino {
                    dst.h.div_ceil(2)
                } else {
                    dst.h
                }
            }
            Op::MaxPool5 { dst, .. } | Op::Upsample2 { dst, .. } => dst.h,
            Op::Scores { src, .. } | Op::Boxes { src, .. } => src.h,
        }
    }

    /// Multiply-adds per image of the convolution as defined (a direct
    /// convolution's).
    pub(crate) fn macs(&self, net: &Network) -> u64 {
        match self {
            Op::Conv { conv, dst, .. } => {
                net.convs[*conv].macs_per_pixel() * (dst.h * dst.w) as u64
            }
            _ => 0,
        }
    }

    /// Multiply-adds per image the kernels run: fewer than [`Op::macs`] for a
    /// Winograd convolution (16 per 2×2 tile and channel pair; its odd last row
    /// and column direct), the transforms not counted.
    pub(crate) fn executed_macs(&self, net: &Network) -> u64 {
        match self {
            Op::Conv {
                conv,
                dst,
                wino: true,
                ..
            } => {
                let p = &net.convs[*conv];
                let tiles = (dst.h / 2) * (dst.w / 2);
                let direct = dst.h * dst.w - 4 * tiles;
                (16 * tiles * p.ic * p.oc) as u64 + p.macs_per_pixel() * direct as u64
            }
            _ => self.macs(net),
        }
    }
}

/// Every op of a forward pass over one image, with its name, the size of the
/// workspace they use and of each thread's scratch (the Winograd transforms').
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub ops: Vec<Op>,
    pub names: Vec<String>,
    pub len: usize,
    pub scratch: usize,
    pub h: usize,
    pub w: usize,
}

struct Builder<'a> {
    net: &'a Network,
    ops: Vec<Op>,
    names: Vec<String>,
    len: usize,
    scratch: usize,
}

impl Builder<'_> {
    /// A new buffer of `c` channels, 64-byte aligned.
    fn alloc(&mut self, h: usize, w: usize, c: usize) -> View {
        let off = self.len;
        self.len += View::buffer_len(h, w, c).next_multiple_of(16);
        View {
            off,
            h,
            w,
            ctot: c,
            coff: 0,
            c,
        }
    }

    fn push(&mut self, name: String, op: Op) {
        self.names.push(name);
        self.ops.push(op);
    }

    fn conv(&mut self, id: usize, src: View, dst: View, res: Option<View>, act: Act) {
        let p = &self.net.convs[id];
        debug_assert_eq!((p.ic, p.oc), (src.c, dst.c), "{}", p.name);
        debug_assert_eq!(dst.h, (src.h + 2 * (p.k / 2) - p.k) / p.stride + 1);
        let name = p.name.clone();
        let wino = p.wino.is_some();
        if wino {
            self.scratch = self.scratch.max(wino_scratch(&self.net.kernels, p));
        }
        self.push(
            name,
            Op::Conv {
                conv: id,
                src,
                dst,
                res,
                act,
                wino,
            },
        );
    }

    /// A convolution block to a new buffer.
    fn conv_new(&mut self, id: usize, src: View) -> View {
        let p = &self.net.convs[id];
        let (h, w) = (
            (src.h + 2 * (p.k / 2) - p.k) / p.stride + 1,
            (src.w + 2 * (p.k / 2) - p.k) / p.stride + 1,
        );
        let dst = self.alloc(h, w, p.oc);
        self.conv(id, src, dst, None, Act::Silu);
        dst
    }

    fn c2f(&mut self, ids: &C2fIds, src: View, dst: View) {
        let (c, n) = (ids.c, ids.m.len());
        let cat = self.alloc(src.h, src.w, (2 + n) * c);
        self.conv(ids.cv1, src, cat.slice(0, 2 * c), None, Act::Silu);
        let tmp = self.alloc(src.h, src.w, c);
        for (i, &(a, b)) in ids.m.iter().enumerate() {
            let x = cat.slice((1 + i) * c, c);
            self.conv(a, x, tmp, None, Act::Silu);
            let res = ids.shortcut.then_some(x);
            self.conv(b, tmp, cat.slice((2 + i) * c, c), res, Act::Silu);
        }
        self.conv(ids.cv2, cat, dst, None, Act::Silu);
    }

    fn c2f_new(&mut self, ids: &C2fIds, src: View) -> View {
        let oc = self.net.convs[ids.cv2].oc;
        let dst = self.alloc(src.h, src.w, oc);
        self.c2f(ids, src, dst);
        dst
    }

    fn sppf(&mut self, (cv1, cv2): (usize, usize), src: View, dst: View) {
        let c = self.net.convs[cv1].oc;
        let cat = self.alloc(src.h, src.w, 4 * c);
        self.conv(cv1, src, cat.slice(0, c), None, Act::Silu);
        let prefix = self.net.convs[cv1]
            .name
            .trim_end_matches(".cv1")
            .to_string();
        for i in 0..3 {
            self.push(
                format!("{prefix}.pool{}", i + 1),
                Op::MaxPool5 {
                    src: cat.slice(i * c, c),
                    dst: cat.slice((i + 1) * c, c),
                },
            );
        }
        self.conv(cv2, cat, dst, None, Act::Silu);
    }

    fn upsample(&mut self, name: &str, src: View, dst: View) {
        self.push(name.to_string(), Op::Upsample2 { src, dst });
    }

    fn head(&mut self, ids: &HeadIds, level: usize, x: View, anchor0: usize, stride: f32) {
        let b1 = self.conv_new(ids.boxes[0], x);
        let b2 = self.conv_new(ids.boxes[1], b1);
        let b3 = self.alloc(x.h, x.w, self.net.convs[ids.boxes[2]].oc);
        self.conv(ids.boxes[2], b2, b3, None, Act::None);
        self.push(
            format!("model.22.dfl.{level}"),
            Op::Boxes {
                src: b3,
                anchor0,
                stride,
            },
        );
        let c1 = self.conv_new(ids.cls[0], x);
        let c2 = self.conv_new(ids.cls[1], c1);
        let c3 = self.alloc(x.h, x.w, self.net.nc);
        self.conv(ids.cls[2], c2, c3, None, Act::Sigmoid);
        self.push(
            format!("model.22.scores.{level}"),
            Op::Scores { src: c3, anchor0 },
        );
    }
}

/// Floats of scratch one thread needs for the Winograd convolution `p` with the
/// kernels `k`: the transformed inputs (`16 × tiles × ic`, rounded to a cache
/// line), then the products (`16 × tiles × padded oc`).
pub(crate) fn wino_scratch(k: &Kernels, p: &PackedConv) -> usize {
    let t = k.wino_tiles();
    (16 * t * p.ic).next_multiple_of(16) + 16 * t * p.oc_padded(k.lanes)
}

impl Layout {
    /// The ops and buffers of `net` for an `h` × `w` input (multiples of 32).
    pub(crate) fn build(net: &Network, h: usize, w: usize) -> Self {
        let g = &net.graph;
        let ch = |id: usize| net.convs[id].oc;
        let mut b = Builder {
            net,
            ops: Vec::new(),
            names: Vec::new(),
            len: 0,
            scratch: 0,
        };
        let input = b.alloc(h, w, 3);
        b.push("input".into(), Op::Input { dst: input });
        let x = b.conv_new(g.l0, input);
        let x = b.conv_new(g.l1, x);
        let x = b.c2f_new(&g.l2, x);
        let x = b.conv_new(g.l3, x);
        // P3 is written straight into its place in the concatenation of layer 14
        // (after the upsampled layer 12), P4 into layer 11's, P5 into layer 20's.
        let (c3, c4, c5) = (ch(g.l4.cv2), ch(g.l6.cv2), ch(g.l9.1));
        let (c12, c16, c19) = (ch(g.l12.cv2), ch(g.l16), ch(g.l19));
        let cat14 = b.alloc(x.h, x.w, c12 + c3);
        let p3 = cat14.slice(c12, c3);
        b.c2f(&g.l4, x, p3);
        let x = b.conv_new(g.l5, p3);
        let cat11 = b.alloc(x.h, x.w, c5 + c4);
        let p4 = cat11.slice(c5, c4);
        b.c2f(&g.l6, x, p4);
        let x = b.conv_new(g.l7, p4);
        let x = b.c2f_new(&g.l8, x);
        let cat20 = b.alloc(x.h, x.w, c19 + c5);
        let p5 = cat20.slice(c19, c5);
        b.sppf(g.l9, x, p5);
        b.upsample("model.10", p5, cat11.slice(0, c5));
        let cat17 = b.alloc(cat11.h, cat11.w, c16 + c12);
        let n12 = cat17.slice(c16, c12);
        b.c2f(&g.l12, cat11, n12);
        b.upsample("model.13", n12, cat14.slice(0, c12));
        let out3 = b.c2f_new(&g.l15, cat14);
        b.conv(g.l16, out3, cat17.slice(0, c16), None, Act::Silu);
        let out4 = b.c2f_new(&g.l18, cat17);
        b.conv(g.l19, out4, cat20.slice(0, c19), None, Act::Silu);
        let out5 = b.c2f_new(&g.l21, cat20);
        let mut anchor0 = 0;
        for (level, (x, stride)) in [(out3, 8.0), (out4, 16.0), (out5, 32.0)]
            .into_iter()
            .enumerate()
        {
            b.head(&g.head[level], level, x, anchor0, stride);
            anchor0 += x.h * x.w;
        }
        Self {
            ops: b.ops,
            names: b.names,
            len: b.len,
            scratch: b.scratch,
            h,
            w,
        }
    }
}
