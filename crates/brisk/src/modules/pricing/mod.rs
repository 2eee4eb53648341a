//! Pricing: the rules of API.md (tiers, customer discount, margins) as pure
//! functions in `engine`, and the one place that loads what they need —
//! every variant, its product's rule and the customer — in a fixed number of
//! statements, whatever the number of items. Quotations and orders get their
//! prices from here.

pub mod engine;
