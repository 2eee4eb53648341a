//! One folder per business capability. Each owns its tables and SQL; other
//! modules call its functions, never its SQL.

pub mod crm;
pub mod ops;
pub mod tenancy;
