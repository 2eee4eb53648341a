//! Catalog: categories, products with options, variants (SKU, price, cost,
//! quantity price [`Tier`]s) and images.
//!
//! Owns the `categories`, `products`, `variants` (all but the `stock`
//! column, which only the inventory module changes), `product_images` and
//! `product_search` tables, and the [`Tier`] type stored with a variant
//! (which tier applies to a quantity is pricing's rule). Invariants: SKUs
//! are unique per tenant; a product has at least one variant; a variant's
//! option values name the product's options; tier `min_quantity` is ≥ 2 and
//! unique per variant; a new variant's stock is within inventory's
//! `MAX_STOCK`, and its initial stock is recorded as a movement in the same
//! transaction; a product is created with all its variants and images in
//! one transaction; reads run a fixed number of statements whatever the
//! page or product size. Deleted products are kept (orders refer to their
//! variants) but vanish from every read. Stored JSON (options, option
//! values, tiers) that does not parse is [`CatalogError::CorruptData`],
//! never read as empty.
//!
//! - `categories`: the category tree.
//! - `products`: products and their images (create, read, list, change,
//!   delete), the public view share links show ([`public_product`]) and
//!   the search-name backfill.
//! - `variants`: adding and changing variants, and [`variants_for_sale`],
//!   what pricing and orders read of them.
//! - `low_stock`: [`low_stock_count`], the dashboard's count of active
//!   variants of active products at or below their reorder level.
//! - `error`: [`CatalogError`], and the only mapping of it to HTTP.
//!
//! Calls only `inventory` (initial stock movements, `MAX_STOCK`).

mod categories;
mod error;
mod low_stock;
mod model;
mod products;
mod routes;
mod variants;

pub use categories::create_category;
pub use error::CatalogError;
pub use low_stock::low_stock_count;
pub use model::{
    Image, NewCategory, NewProduct, NewVariant, ProductOption, PublicProduct, Tier, Variant,
};
pub use products::{
    backfill_search, create_product, create_product_at, product_exists, public_product,
};
pub use routes::router;
pub use variants::{VariantForSale, variants_for_sale};
