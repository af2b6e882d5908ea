//! The stages reel-host adds to a pipeline itself: adapters over `reel-ops`
//! (analysis). Detection is `reel-infer`'s own stage and plugins are in
//! [`crate::plugins`].

pub(crate) mod analysis;
