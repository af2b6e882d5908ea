//! The job engine: every command is a [`JobSpec`] (an input, a decode request, an
//! ordered list of stages, sinks, a mode, a skip policy and quality control) run by
//! [`start`] over [`Resources`] that every job of the process shares: one frame
//! pool under one byte budget, the models, the cache.
//!
//! `start` answers from the cache when it can, else probes the input, chooses the
//! decode size and format from what the stages need (analysis alone decodes at
//! the analysis size; detection, plugins and a video out get whole frames, and the
//! analysis reduces its own copy), and starts one pipeline: source → stages in
//! order → one sink (result lines, cache, video out). The [`RunningJob`] gives live
//! metrics, a cancel, and a join that hands back the sink and turns it into the
//! [`JobSummary`].

mod error;
mod resources;
mod run;
mod spec;
mod summary;

pub use error::JobError;
pub use resources::{DEFAULT_POOL_BUDGET, Resources};
pub use run::{JobIo, RunningJob, start};
pub use spec::{
    AnalysisRequest, DecodeRequest, DetectionRequest, JobSpec, PluginRequest, StageRequest,
    VideoOut,
};
pub use summary::{
    AnalysisSummary, BatchSummary, CacheStatus, DetectionSummary, JobSummary, ModelSummary,
    PoolSummary, Scene, SceneDetector, StageSummary, VideoSummary,
};
