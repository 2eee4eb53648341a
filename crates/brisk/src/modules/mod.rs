//! One folder per business capability. Each owns its tables and SQL; other
//! modules call its functions, never its SQL.

pub mod catalog;
pub mod crm;
pub mod inventory;
pub mod ops;
pub mod orders;
pub mod pricing;
pub mod quotes;
pub mod tenancy;
pub mod wallet;
