//! Tests of the decoders through their public API, against real files made by the
//! tests and against oracles the project did not write.
// Tests may unwrap, helpers included.
#![allow(clippy::unwrap_used)]

mod synthetic;
