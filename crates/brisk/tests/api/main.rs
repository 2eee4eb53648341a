//! Brisk's black-box tests: one binary (one link instead of one per area),
//! one module per area of the API. Each test starts the real server on a
//! random loopback port against a fresh database and talks HTTP to it; the
//! backend is chosen with `BRISK_TEST_BACKEND` (see `common`).

mod architecture;
mod auth;
mod backoffice;
mod bench_dispatch;
mod cache;
mod catalog;
mod common;
mod customers;
mod dashboard;
mod database;
mod events;
mod http_pipeline;
mod inventory;
mod jobs;
mod ledgers;
mod load;
mod mail;
mod notifications;
mod ops;
mod orders;
mod pricing;
mod process;
mod query_plans;
mod quotations;
mod reports;
mod seed;
mod share_links;
mod wallets;
mod webhooks;
mod workers;
