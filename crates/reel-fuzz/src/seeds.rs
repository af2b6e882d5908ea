//! The corpus each target starts from: the inputs reel's own tests use, made here
//! in code (the Y4M files and weights files are generated, never stored).

/// A Y4M file of `frames` frames of `width` x `height` in colour space `cs`
/// (`None`: the default, 4:2:0), with `extra` header words, its pixels a ramp.
fn y4m_file(width: usize, height: usize, cs: Option<&str>, extra: &str, frames: usize) -> Vec<u8> {
    let mut out = format!("YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1");
    if let Some(cs) = cs {
        out.push_str(" C");
        out.push_str(cs);
    }
    out.push_str(extra);
    out.push('\n');
    let mut bytes = out.into_bytes();
    let luma = width * height;
    let len = if cs == Some("mono") {
        luma
    } else {
        luma + 2 * width.div_ceil(2) * height.div_ceil(2)
    };
    for f in 0..frames {
        bytes.extend_from_slice(if f % 2 == 0 {
            b"FRAME\n"
        } else {
            b"FRAME Ixyz\n"
        });
        bytes.extend((0..len).map(|i| (i * 7 + f * 31) as u8));
    }
    bytes
}

/// Y4M inputs: the option byte the target reads first, then the file.
pub fn y4m() -> Vec<Vec<u8>> {
    let files = [
        y4m_file(16, 8, Some("420jpeg"), "", 2),
        y4m_file(16, 8, None, "", 3),
        y4m_file(15, 9, Some("420mpeg2"), " XYSCSS=420MPEG2", 2),
        y4m_file(8, 8, Some("mono"), "", 2),
        y4m_file(32, 18, Some("420paldv"), "", 1),
        y4m_file(4, 4, Some("444"), "", 1),
        b"YUV4MPEG2 W640 H360 F30000:1001 Ip A1:1 C420jpeg\nFRAME\n".to_vec(),
        b"YUV4MPEG2 W16384 H16384 F30:1\nFRAME\n".to_vec(),
        b"YUV4MPEG2 W0 H0\n".to_vec(),
        b"YUV4MPEG2\n".to_vec(),
        b"NOTY4M W16 H8\n".to_vec(),
    ];
    let mut seeds = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        for choice in [0u8, 5, 10, 15] {
            let mut s = vec![choice.wrapping_add(i as u8 * 16)];
            s.extend_from_slice(&file);
            seeds.push(s);
        }
    }
    seeds
}

fn texts(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Image sequence patterns.
pub fn image_pattern() -> Vec<Vec<u8>> {
    texts(&[
        "frames/img_%04d.png",
        "a%%b%d.jpg",
        "img%d.png",
        "img%3d.png",
        "img%255d.png",
        "img%0255d.png",
        "plain.png",
        "two%d%d.png",
        "bad%s.png",
        "100%%.png",
        "img%065536d.png",
        "img%099999999999999999999999d.png",
        "/tmp/shots/%08d.jpeg",
    ])
}

/// `synthetic:` URIs, as the tests and the demo write them.
pub fn synthetic() -> Vec<Vec<u8>> {
    texts(&[
        "synthetic:",
        "synthetic:scenes",
        "synthetic:scenes?",
        "synthetic:?frames=5&scenes=3",
        "synthetic:?frames=50&scenes=5",
        "synthetic:?fps=0",
        "synthetic:?width=abc",
        "synthetic:?colour=red",
        "synthetic:?objects=20",
        "synthetic:?width=100000&height=100000",
        "synthetic:?scenes=10000000&frames=200000000",
        "synthetic:scenes?frames=120&scenes=3",
        "synthetic:scenes?width=160&height=120&fps=30&frames=120&scenes=2&seed=1",
        "synthetic:scenes?width=320&height=180&fps=30&frames=120&scenes=4&seed=11&objects=3",
        "synthetic:scenes?width=64&height=36&fps=30000/1001&frames=40&scenes=1&seed=4",
        "synthetic:scenes?width=16&height=16&fps=29.97&frames=10&scenes=1&objects=0",
    ])
}

/// ffprobe's report on a typical H.264 file.
const FFPROBE_H264: &str = r#"{
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_type": "video",
            "width": 1280,
            "height": 720,
            "pix_fmt": "yuv420p",
            "r_frame_rate": "30/1",
            "avg_frame_rate": "30/1",
            "time_base": "1/15360",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration": "10.000000",
            "nb_frames": "300",
            "bit_rate": "1500000",
            "disposition": {"default": 1, "attached_pic": 0},
            "tags": {"language": "und", "handler_name": "VideoHandler"}
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_type": "audio",
            "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0",
            "time_base": "1/48000"
        }
    ],
    "format": {
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration": "10.000000",
        "start_time": "0.000000",
        "bit_rate": "1600000"
    }
}"#;

/// ffprobe's report on a rotated phone video with variable frame rate.
const FFPROBE_ROTATED: &str = r#"{"streams":[{"index":0,"codec_name":"hevc","codec_type":"video","width":1920,"height":1080,"pix_fmt":"yuvj420p","r_frame_rate":"60/1","avg_frame_rate":"29917/1000","time_base":"1/600","start_pts":-20,"start_time":"-0.033333","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}],"tags":{"rotate":"90"}}],"format":{"format_name":"mov,mp4","duration":"3.5"}}"#;

/// ffprobe's reports: the typical ones, cover art, audio alone, nothing, a huge
/// frame.
pub fn ffprobe_json() -> Vec<Vec<u8>> {
    texts(&[
        FFPROBE_H264,
        FFPROBE_ROTATED,
        r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"mjpeg","width":600,"height":600,"disposition":{"attached_pic":1}},{"index":1,"codec_type":"video","codec_name":"vp9","width":320,"height":240,"r_frame_rate":"25/1"}]}"#,
        r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"mp3"}],"format":{"format_name":"mp3"}}"#,
        r#"{"streams":[],"format":{}}"#,
        r#"{}"#,
        r#"{"streams":[{"index":0,"codec_type":"video","width":100000,"height":100000,"r_frame_rate":"1/0"}]}"#,
    ])
}

/// A decoding ffmpeg's stderr, and its failures.
pub fn showinfo_log() -> Vec<Vec<u8>> {
    texts(&[
        "[showinfo@pre @ 0x55dbc41cb9c0] [info] config in time_base: 1/15360, frame_rate: 30/1\n\
         [showinfo@post @ 0x55dbc41cb9c1] [info] config in time_base: 1/15360, frame_rate: 30/1\n\
         [showinfo@pre @ 0x55dbc41cb9c0] [info] n:   0 pts:      0 pts_time:0       pos:       48 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:1 type:I \n\
         [showinfo@post @ 0x55dbc41cb9c1] [info] n:   0 pts:      0 pts_time:0 fmt:rgb24\n\
         [showinfo@pre @ 0x55dbc41cb9c0] [info] n:   1 pts:    512 pts_time:0.0333  pos: 1200\n\
         [showinfo@pre @ 0x55dbc41cb9c0] [info]   side data - caption\n\
         [h264 @ 0x55dbc41d0000] [error] error while decoding MB 12 7, bytestream -5\n\
         [showinfo@post @ 0x55dbc41cb9c1] [info] n:12345 pts:12345678 pts_time:964.506 pos:33555 fmt:rgb24\n",
        "[in#0 @ 0x1] [error] Error opening input: Invalid data found when processing input\n\
         [fatal] Error opening input file broken.mp4.\n",
        "Stream mapping:\n  Stream #0:0 -> #0:0 (h264 (native) -> rawvideo (native))\n\
         Press [q] to stop, [?] for help\n[info] video:0kB audio:0kB\n\
         [warning] something odd : here\n",
        "[showinfo@pre @ 0x1] [info] n:18446744073709551615 pts:-9223372036854775808\r\n",
    ])
}

/// `--plugin` values: the option byte (0: the spec; 1: a JSON file; 2: a TOML
/// file), then the text.
pub fn plugin_spec() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for spec in [
        "pixelate",
        "pixelate:{\"labels\":[\"face\"],\"block\":8}",
        "pixelate:block=8,labels=[\"face\"]",
        "overlay:",
        "overlay: ",
        "./target/plugins/libreel_plugin_motion.so:threshold=0.5",
        "C:\\plugins\\motion.dll:x=1",
        "motion:[1,2]",
        "bad name:x=1",
        ":x=1",
        "pixelate:block=",
    ] {
        let mut s = vec![0];
        s.extend_from_slice(spec.as_bytes());
        seeds.push(s);
    }
    for json in [
        "{\"labels\":[\"face\",\"person\"],\"block\":16}",
        "[]",
        "{",
        "",
    ] {
        let mut s = vec![1];
        s.extend_from_slice(json.as_bytes());
        seeds.push(s);
    }
    for toml in [
        "block = 8\nlabels = [\"face\"]\n[style]\ncolour = \"red\"\n",
        "a = 1979-05-27T07:32:00Z\n",
        "x = [\n",
        "",
    ] {
        let mut s = vec![2];
        s.extend_from_slice(toml.as_bytes());
        seeds.push(s);
    }
    seeds
}

/// `reel.toml` files.
pub fn config() -> Vec<Vec<u8>> {
    texts(&[
        r#"
level = "aggressive"
mode = "batch"
workers = 6
pool_budget = "2 GiB"
batch_size = 16
plugin_dirs = ["~/reel/plugins", "plugins", "/opt/reel/plugins"]
network_timeout = "15s"

[cache]
enabled = true
dir = "cache"
max_size = "1 GB"
max_age = "14d"

[analyze]
size = "480x270"
threshold = 30.5
min_scene_len = 10
"#,
        "mode = \"realtime\"\n",
        "level = \"conservative\"\nworkers = 0\n",
        "pool_budget = \"0\"\n",
        "[analyze]\nsize = \"0x0\"\n",
        "[cache]\nmax_age = \"forever\"\n",
        "unknown = 1\n",
        "workers = -1\n",
        "",
    ])
}

/// The tensors the safetensors target loads by name: the first and last layers of
/// a YOLOv8 in ultralytics' naming (a file in the hub's naming is asked for the
/// same, translated).
pub const TENSOR_NAMES: [&str; 3] = [
    "model.0.conv.weight",
    "model.0.bn.weight",
    "model.22.dfl.conv.weight",
];

/// A safetensors file of the tensors `(name, dtype, shape)`, each filled with
/// small numbers.
fn safetensors_file(tensors: &[(&str, &str, &[usize])], metadata: bool) -> Vec<u8> {
    let size_of = |dtype: &str| match dtype {
        "F64" | "I64" => 8,
        "F32" | "I32" => 4,
        "F16" | "BF16" => 2,
        _ => 1,
    };
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, dtype, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * size_of(dtype);
        let start = data.len();
        data.extend((0..bytes).map(|i| (i % 61) as u8));
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            dims.join(","),
            data.len()
        ));
    }
    if metadata {
        entries.push("\"__metadata__\":{\"format\":\"pt\"}".to_string());
    }
    let mut header = format!("{{{}}}", entries.join(","));
    // The data starts on an 8-byte boundary, as writers pad it.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    file
}

/// Weights files: both namings, several precisions, a tensor of the wrong shape,
/// empty ones, a header that lies about its length.
pub fn safetensors() -> Vec<Vec<u8>> {
    let mut lying = safetensors_file(&[("model.0.conv.weight", "F32", &[2, 2])], false);
    lying[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    vec![
        safetensors_file(
            &[
                ("model.0.conv.weight", "F32", &[16, 3, 3, 3]),
                ("model.0.bn.weight", "F32", &[16]),
                ("model.22.dfl.conv.weight", "F32", &[1, 16, 1, 1]),
            ],
            true,
        ),
        safetensors_file(
            &[
                ("net.b1.0.conv.weight", "F16", &[16, 3, 3, 3]),
                ("net.b1.0.bn.weight", "BF16", &[16]),
            ],
            false,
        ),
        safetensors_file(&[("model.0.conv.weight", "F64", &[2, 3])], true),
        safetensors_file(&[("model.0.conv.weight", "U8", &[0])], false),
        safetensors_file(&[("other.weight", "F32", &[4])], false),
        safetensors_file(&[], true),
        lying,
        b"not a safetensors file".to_vec(),
    ]
}
