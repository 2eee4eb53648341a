//! Catalog: categories, products with options, variants (SKU, price, cost,
//! quantity price tiers) and images.
//!
//! Owns the `categories`, `products`, `variants` (all but the `stock`
//! column, which only the inventory module changes), `product_images` and
//! `product_search` tables. Invariants: SKUs are unique per tenant; a product
//! has at least one variant; a variant's option values name the product's
//! options; tier `min_quantity` is ≥ 2 and unique per variant; a product is
//! created with all its variants and images in one transaction; reads run a
//! fixed number of statements whatever the page or product size. Deleted
//! products are kept (orders refer to their variants) but vanish from every
//! read.

mod categories;
mod model;
mod products;
mod routes;
mod variants;

pub use model::{Tier, Variant, VariantRow, parse_tiers};
pub use products::backfill_search;
pub use routes::router;
pub use variants::{VariantForSale, variants_for_sale};
