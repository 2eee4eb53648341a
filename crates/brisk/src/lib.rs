//! Brisk: a fast, correct ERP/CRM and commerce backend.
//!
//! `app` turns a [`platform::config::Config`] into a running server;
//! `platform` is what every module shares; `modules` holds the business.

#![forbid(unsafe_code)]

pub mod app;
pub mod modules;
pub mod platform;
