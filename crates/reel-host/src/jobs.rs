//! The jobs reel's commands run, each only a builder of a [`JobSpec`]: the engine
//! in [`crate::job`] runs them all the same way, so any combination of stages runs
//! in one decode pass.

use reel_sched::Mode;

use crate::config::Settings;
use crate::job::{AnalysisRequest, DetectionRequest, JobSpec, PluginRequest, StageRequest};

/// `reel analyze`: the analysis, then detection when a model is given (its
/// detections join each frame's measurements), then the plugins, in order.
pub fn analyze(
    input: impl Into<String>,
    analysis: AnalysisRequest,
    model: Option<DetectionRequest>,
    plugins: Vec<PluginRequest>,
) -> JobSpec {
    let mut spec = JobSpec::new(input);
    spec.stages.push(StageRequest::Analysis(analysis));
    spec.stages.extend(model.map(StageRequest::Detection));
    spec.stages
        .extend(plugins.into_iter().map(StageRequest::Plugin));
    spec
}

/// `reel detect`: the model's detections, then the plugins (which see them: the
/// overlay draws them, pixelate hides them).
pub fn detect(
    input: impl Into<String>,
    detection: DetectionRequest,
    plugins: Vec<PluginRequest>,
) -> JobSpec {
    let mut spec = JobSpec::new(input);
    spec.stages.push(StageRequest::Detection(detection));
    spec.stages
        .extend(plugins.into_iter().map(StageRequest::Plugin));
    spec
}

/// What the effective settings say of every job: the mode (`reel.toml`'s `mode`,
/// else `default_mode`, the command's own), the parallel stages' workers, and
/// whether the cache may be used.
pub fn with_settings(mut spec: JobSpec, settings: &Settings, default_mode: Mode) -> JobSpec {
    spec.mode = settings.mode.unwrap_or(default_mode);
    spec.workers = settings.workers.max(1);
    spec.use_cache = settings.cache.enabled;
    spec.decode.network_timeout =
        std::time::Duration::try_from_secs_f64(settings.network_timeout_s).ok();
    spec
}
