//! Brisk: a fast, correct ERP/CRM and commerce backend.
//!
//! `app` turns a [`platform::config::Config`] into a running server;
//! `platform` is what every module shares; `modules` holds the business; `seed` fills a database
//! through the modules' own functions (`brisk seed`).

#![forbid(unsafe_code)]

pub mod app;
pub mod modules;
pub mod platform;
pub mod seed;
