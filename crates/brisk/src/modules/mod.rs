//! One folder per business capability. Each owns its tables and SQL; other
//! modules call its functions, never its SQL.

pub mod catalog;
pub mod inventory;
pub mod ops;
pub mod pricing;
pub mod tenancy;
