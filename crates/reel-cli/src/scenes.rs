//! The scene exports of `reel analyze`: the scene list as PySceneDetect's
//! `list-scenes` CSV (`--scenes-csv`) and as a CMX 3600 edit decision list
//! (`--edl`). One formatter per format, each writing a finished run's scenes; the
//! times are the scenes' own (the frames' presentation times), so a video whose
//! frames are not evenly spaced keeps its true times.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use reel_host::job::{JobSummary, Scene};

use crate::output::timecode;

/// The CSV's column names, as PySceneDetect writes them.
const CSV_HEADER: &str = "Scene Number,Start Frame,Start Timecode,Start Time (seconds),\
End Frame,End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds)";

/// Writes `scenes` as PySceneDetect's `list-scenes` CSV: first the `Timecode
/// List:` line (the start of every scene but the first; an empty line when there
/// is no cut, as PySceneDetect writes it), then the header and one
/// row per scene. Frames are numbered from 1 and the end frame is the scene's last
/// (so the 0-based index of the next scene's first frame); an end time is the next
/// scene's start, the last one the end of the last frame. No field can hold a
/// separator or a quote, so none is quoted.
pub fn write_csv(out: &mut dyn Write, scenes: &[Scene]) -> std::io::Result<()> {
    let cuts: Vec<String> = scenes.iter().skip(1).map(|s| timecode(s.start_s)).collect();
    if cuts.is_empty() {
        writeln!(out)?;
    } else {
        writeln!(out, "Timecode List:,{}", cuts.join(","))?;
    }
    writeln!(out, "{CSV_HEADER}")?;
    for (i, s) in scenes.iter().enumerate() {
        let length_s = (s.end_s - s.start_s).max(0.0);
        writeln!(
            out,
            "{},{},{},{:.3},{},{},{:.3},{},{},{:.3}",
            i + 1,
            s.start_frame + 1,
            timecode(s.start_s),
            s.start_s,
            s.end_frame + 1,
            timecode(s.end_s),
            s.end_s,
            s.end_frame.saturating_sub(s.start_frame) + 1,
            timecode(length_s),
            length_s,
        )?;
    }
    Ok(())
}

/// Writes `scenes` as a CMX 3600 edit decision list titled `title`: one video cut
/// event per scene from reel `AX`, its source in/out and record in/out the scene's
/// start and end as non-drop-frame `HH:MM:SS:FF` timecodes at `fps` (the out point
/// is the frame after the scene, as CMX 3600 has it). The record side is the
/// source's own timeline, since the events follow one another from the start.
pub fn write_edl(
    out: &mut dyn Write,
    title: &str,
    fps: f64,
    scenes: &[Scene],
) -> std::io::Result<()> {
    // A title is one line; CMX 3600 readers take 70 characters of it.
    let title: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(70)
        .collect();
    writeln!(out, "TITLE: {title}")?;
    writeln!(out, "FCM: NON-DROP FRAME")?;
    writeln!(out)?;
    for (i, s) in scenes.iter().enumerate() {
        let tc_in = smpte(s.start_s, fps);
        let tc_out = smpte(s.end_s, fps);
        writeln!(
            out,
            "{:03}  AX       V     C        {tc_in} {tc_out} {tc_in} {tc_out}",
            i + 1
        )?;
    }
    Ok(())
}

/// `seconds` as a non-drop-frame SMPTE timecode `HH:MM:SS:FF`: the nearest frame
/// at `fps`, counted at the nominal (whole) rate as non-drop-frame timecode counts.
pub fn smpte(seconds: f64, fps: f64) -> String {
    let nominal = fps.round().max(1.0) as u64;
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        1.0
    };
    let frame = (seconds.max(0.0) * fps).round() as u64;
    let per_hour = nominal * 3600;
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        frame / per_hour,
        frame / (nominal * 60) % 60,
        frame / nominal % 60,
        frame % nominal
    )
}

/// Writes the scene exports asked for (`--scenes-csv`, `--edl`; `-` is standard
/// output) from a finished run's summary; nothing when the run had no analysis.
pub fn write_exports(
    csv: Option<&Path>,
    edl: Option<&Path>,
    summary: &JobSummary,
) -> anyhow::Result<()> {
    let Some(analysis) = &summary.analysis else {
        return Ok(());
    };
    let scenes = &analysis.scenes;
    if let Some(path) = csv {
        write_to(path, "the scene list", |out| write_csv(out, scenes))?;
    }
    if let Some(path) = edl {
        let title = edl_title(&summary.input);
        write_to(path, "the edit decision list", |out| {
            write_edl(out, &title, summary.video.fps, scenes)
        })?;
    }
    Ok(())
}

/// The EDL's title: the input's file name without its extension, as editors name
/// a sequence after its source.
fn edl_title(input: &str) -> String {
    Path::new(input)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && input != "-")
        .unwrap_or_else(|| "reel".to_string())
}

/// Runs `write` on the file at `path` (created or emptied), or on standard output
/// for `-`, and reports a failure as writing `what` to the path.
fn write_to(
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return write(&mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {what} to standard output"));
    }
    let context = || format!("writing {what} to {}", path.display());
    let file = std::fs::File::create(path).with_context(context)?;
    let mut out = std::io::BufWriter::new(file);
    write(&mut out)
        .and_then(|()| out.flush())
        .with_context(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smpte_timecodes_count_frames_at_the_nominal_rate() {
        assert_eq!(smpte(0.0, 25.0), "00:00:00:00");
        assert_eq!(smpte(1.2, 25.0), "00:00:01:05");
        assert_eq!(smpte(3725.52, 25.0), "01:02:05:13");
        // 29.97 fps: frame 1800 is 00:01:00:00 in non-drop-frame timecode.
        assert_eq!(
            smpte(1800.0 / (30000.0 / 1001.0), 30000.0 / 1001.0),
            "00:01:00:00"
        );
    }

    #[test]
    fn edl_titles_are_the_input_files_stem() {
        assert_eq!(edl_title("/videos/talk.mp4"), "talk");
        assert_eq!(edl_title("-"), "reel");
    }
}
