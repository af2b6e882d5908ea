//! What the jobs share around a running pipeline: waiting for it while passing on
//! cancellation and progress, and the number of frames to expect.

use std::time::Duration;

use reel_decode::VideoInfo;
use reel_sched::{PipelineHandle, Report};

use crate::analyze::{CancelFlag, Progress};

/// How often a waiting job looks at cancellation and reports progress.
const POLL: Duration = Duration::from_millis(50);

/// Waits for `handle`'s pipeline to end, cancelling it when `cancel` is raised and
/// reporting its metrics to `progress` as it goes; returns its report.
pub(crate) fn watch(
    handle: PipelineHandle,
    cancel: &CancelFlag,
    mut progress: Option<&mut Progress<'_>>,
    expected: Option<u64>,
) -> Report {
    while !handle.is_finished() {
        if cancel.is_raised() {
            handle.cancel();
        }
        if let Some(progress) = progress.as_mut() {
            progress(&handle.metrics(), expected);
        }
        std::thread::sleep(POLL);
    }
    handle.join()
}

/// The frames in the source, from the probe: its count, else its duration times its
/// rate; `None` when neither is known.
pub(crate) fn source_frames(info: &VideoInfo) -> Option<u64> {
    info.frames.or_else(|| {
        info.duration_s
            .map(|d| (d * info.fps).round())
            .filter(|n| n.is_finite() && *n > 0.0)
            .map(|n| n as u64)
    })
}
