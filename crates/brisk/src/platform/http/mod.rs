//! The HTTP edge shared by every module: the error type, extractors, list
//! helpers and the middleware pipeline.

pub mod error;
pub mod extract;
pub mod list;
pub mod pipeline;
