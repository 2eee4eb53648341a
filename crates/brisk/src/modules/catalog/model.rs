//! Catalog request and response shapes, and their validation.

use std::collections::{BTreeMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::FromRow;

use super::error::CatalogError;
use crate::modules::inventory::MAX_STOCK;
use crate::platform::clock;
use crate::platform::validation::Validator;

pub const MAX_VARIANTS: usize = 100;
pub const MAX_OPTIONS: usize = 10;
pub const MAX_OPTION_VALUES: usize = 100;
pub const MAX_IMAGES: usize = 50;
pub const MAX_TIERS: usize = 20;
const NAME_CHARS: usize = 200;
const SKU_CHARS: usize = 64;
const DESCRIPTION_CHARS: usize = 10_000;
const URL_CHARS: usize = 2048;

/// A quantity price break of a variant: from `min_quantity` units on, the
/// unit price is `price`. Stored with the variant (its `tiers` column);
/// which tier applies to a quantity is pricing's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    pub min_quantity: i64,
    pub price: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductOption {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewImage {
    pub url: String,
    pub alt: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Image {
    pub id: String,
    pub url: String,
    pub alt: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewVariant {
    pub sku: String,
    pub price: i64,
    pub cost: Option<i64>,
    pub stock: Option<i64>,
    pub reorder_level: Option<i64>,
    pub active: Option<bool>,
    #[schema(value_type = Object)]
    pub option_values: Option<BTreeMap<String, String>>,
    pub tiers: Option<Vec<Tier>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewProduct {
    pub name: String,
    pub description: Option<String>,
    pub category_id: Option<String>,
    pub active: Option<bool>,
    pub min_margin_bp: Option<i64>,
    pub options: Option<Vec<ProductOption>>,
    pub variants: Vec<NewVariant>,
    pub images: Option<Vec<NewImage>>,
}

/// PATCH /products/{id}: any subset; `null` clears `description` and
/// `category_id`; `images` replaces the whole set.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ProductPatch {
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    pub category_id: Option<Option<String>>,
    pub active: Option<bool>,
    pub min_margin_bp: Option<i64>,
    pub images: Option<Vec<NewImage>>,
}

/// PATCH /variants/{id}: any subset. `stock` is refused: stock changes only
/// through adjustments, orders and cancellations.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VariantPatch {
    pub sku: Option<String>,
    pub price: Option<i64>,
    pub cost: Option<i64>,
    pub reorder_level: Option<i64>,
    pub active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub option_values: Option<BTreeMap<String, String>>,
    pub tiers: Option<Vec<Tier>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<i64>)]
    pub stock: Option<Option<Value>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewCategory {
    pub name: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
}

/// A variant as stored.
#[derive(Debug, Clone, FromRow)]
pub struct VariantRow {
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub price: i64,
    pub cost: i64,
    pub stock: i64,
    pub reorder_level: i64,
    pub active: i64,
    pub option_values: String,
    pub tiers: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const VARIANT_COLUMNS: &str = "v.id, v.product_id, v.sku, v.price, v.cost, v.stock, v.reorder_level, \
     v.active, v.option_values, v.tiers, v.created_at, v.updated_at";

/// A variant as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub price: i64,
    pub cost: i64,
    pub stock: i64,
    pub reorder_level: i64,
    pub active: bool,
    #[schema(value_type = Object)]
    pub option_values: Value,
    pub tiers: Vec<Tier>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

impl TryFrom<VariantRow> for Variant {
    type Error = CatalogError;

    fn try_from(r: VariantRow) -> Result<Self, CatalogError> {
        Ok(Variant {
            option_values: stored_json(&r.option_values, "variants", &r.id, "option_values")?,
            tiers: stored_json(&r.tiers, "variants", &r.id, "tiers")?,
            id: r.id,
            product_id: r.product_id,
            sku: r.sku,
            price: r.price,
            cost: r.cost,
            stock: r.stock,
            reorder_level: r.reorder_level,
            active: r.active != 0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A JSON column of the row `id` of `table`, parsed. Text that does not
/// parse is corrupt data, never read as a default: tiers read as none would
/// sell at the list price, options read as none would refuse every option.
pub fn stored_json<T: DeserializeOwned>(
    text: &str,
    table: &'static str,
    id: &str,
    column: &'static str,
) -> Result<T, CatalogError> {
    serde_json::from_str(text).map_err(|source| CatalogError::CorruptData {
        table,
        id: id.to_owned(),
        column,
        source,
    })
}

/// A product as stored, with its variant aggregates.
#[derive(Debug, Clone, FromRow)]
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub category_id: Option<String>,
    pub active: i64,
    pub min_margin_bp: i64,
    pub options: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub stock_total: Option<i64>,
    pub variant_count: Option<i64>,
}

/// A product: in lists (without `options`, `images`; `variants` only with
/// `include=variants`) and in detail (everything).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub category_id: Option<String>,
    pub active: bool,
    pub min_margin_bp: i64,
    pub price_min: i64,
    pub price_max: i64,
    pub stock_total: i64,
    pub variant_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<ProductOption>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<Variant>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

/// What anyone holding a share link sees of a product: no cost, stock,
/// margin or internal flags.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicProduct {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Lowest and highest variant price (0 without variants).
    pub price_min: i64,
    pub price_max: i64,
    pub images: Vec<Image>,
}

/// The fields of a product in a list. A list item carries no `options` or
/// `images` (only the detail does), so a list cannot select them.
pub const PRODUCT_LIST_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "category_id",
    "active",
    "min_margin_bp",
    "price_min",
    "price_max",
    "stock_total",
    "variant_count",
    "variants",
    "created_at",
    "updated_at",
];

/// What the product detail adds to [`PRODUCT_LIST_FIELDS`].
pub const PRODUCT_DETAIL_FIELDS: &[&str] = &["options", "images"];

pub const VARIANT_FIELDS: &[&str] = &[
    "id",
    "product_id",
    "sku",
    "price",
    "cost",
    "stock",
    "reorder_level",
    "active",
    "option_values",
    "tiers",
    "created_at",
    "updated_at",
];

pub const CATEGORY_FIELDS: &[&str] = &["id", "name", "parent_id", "created_at"];

impl ProductRow {
    pub fn into_product(self) -> Product {
        Product {
            options: None,
            variants: None,
            images: None,
            id: self.id,
            name: self.name,
            description: self.description,
            category_id: self.category_id,
            active: self.active != 0,
            min_margin_bp: self.min_margin_bp,
            price_min: self.price_min.unwrap_or(0),
            price_max: self.price_max.unwrap_or(0),
            stock_total: self.stock_total.unwrap_or(0),
            variant_count: self.variant_count.unwrap_or(0),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    pub fn options(&self) -> Result<Vec<ProductOption>, CatalogError> {
        stored_json(&self.options, "products", &self.id, "options")
    }
}

/// Aggregates of a product's variants, as the list shows them.
pub fn aggregate(product: &mut Product, variants: &[Variant]) {
    product.price_min = variants.iter().map(|v| v.price).min().unwrap_or(0);
    product.price_max = variants.iter().map(|v| v.price).max().unwrap_or(0);
    product.stock_total = variants
        .iter()
        .fold(0i64, |acc, v| acc.saturating_add(v.stock));
    product.variant_count = variants.len() as i64;
}

// ---------------------------------------------------------------------------
// Validation

pub fn check_margin_bp(v: &mut Validator, field: &str, bp: i64) {
    v.check(
        (-10_000..=10_000).contains(&bp),
        field,
        "must be between -10000 and 10000 basis points",
    );
}

pub fn check_options(v: &mut Validator, options: &[ProductOption]) {
    v.check(
        options.len() <= MAX_OPTIONS,
        "options",
        format!("at most {MAX_OPTIONS} options"),
    );
    let mut names = HashSet::new();
    for (i, o) in options.iter().enumerate() {
        let field = format!("options[{i}].name");
        v.text(&field, &o.name, NAME_CHARS);
        v.check(
            names.insert(o.name.trim().to_owned()),
            &field,
            "option names must be unique",
        );
        let vf = format!("options[{i}].values");
        v.check(
            !o.values.is_empty(),
            &vf,
            "an option needs at least one value",
        );
        v.check(
            o.values.len() <= MAX_OPTION_VALUES,
            &vf,
            format!("at most {MAX_OPTION_VALUES} values"),
        );
        let mut seen = HashSet::new();
        for (j, value) in o.values.iter().enumerate() {
            let f = format!("options[{i}].values[{j}]");
            v.text(&f, value, NAME_CHARS);
            v.check(
                seen.insert(value.trim().to_owned()),
                &f,
                "values must be unique within an option",
            );
        }
    }
}

pub fn check_images(v: &mut Validator, images: &[NewImage]) {
    v.check(
        images.len() <= MAX_IMAGES,
        "images",
        format!("at most {MAX_IMAGES} images"),
    );
    for (i, image) in images.iter().enumerate() {
        let f = format!("images[{i}].url");
        v.text(&f, &image.url, URL_CHARS);
        v.check(
            !image.url.trim().contains(char::is_whitespace),
            &f,
            "must not contain spaces",
        );
        if let Some(alt) = &image.alt {
            v.optional_text(&format!("images[{i}].alt"), alt, NAME_CHARS);
        }
    }
}

pub fn check_sku(v: &mut Validator, field: &str, sku: &str) {
    v.text(field, sku, SKU_CHARS);
    v.check(
        !sku.trim().contains(char::is_whitespace),
        field,
        "must not contain spaces",
    );
}

pub fn check_tiers(v: &mut Validator, prefix: &str, tiers: &[Tier]) {
    v.check(
        tiers.len() <= MAX_TIERS,
        format!("{prefix}.tiers"),
        format!("at most {MAX_TIERS} tiers"),
    );
    let mut seen = HashSet::new();
    for (i, t) in tiers.iter().enumerate() {
        let f = format!("{prefix}.tiers[{i}].min_quantity");
        v.check(t.min_quantity >= 2, &f, "must be at least 2");
        v.check(
            seen.insert(t.min_quantity),
            &f,
            "must be unique within the variant",
        );
        v.check(
            t.price >= 0,
            format!("{prefix}.tiers[{i}].price"),
            "must not be negative",
        );
    }
}

/// Option values must name the product's options and their values.
pub fn check_option_values(
    v: &mut Validator,
    field: &str,
    values: &BTreeMap<String, String>,
    options: &[ProductOption],
) {
    for (name, value) in values {
        match options.iter().find(|o| o.name.trim() == name.as_str()) {
            None => v.error(field, format!("{name:?} is not an option of this product")),
            Some(o) if !o.values.iter().any(|x| x.trim() == value.as_str()) => v.error(
                field,
                format!("{value:?} is not a value of option {name:?}"),
            ),
            Some(_) => {}
        }
    }
}

pub fn check_variant(
    v: &mut Validator,
    prefix: &str,
    variant: &NewVariant,
    options: &[ProductOption],
) {
    check_sku(v, &format!("{prefix}.sku"), &variant.sku);
    v.check(
        variant.price >= 0,
        format!("{prefix}.price"),
        "must not be negative",
    );
    v.check(
        variant.cost.unwrap_or(0) >= 0,
        format!("{prefix}.cost"),
        "must not be negative",
    );
    v.check(
        (0..=MAX_STOCK).contains(&variant.stock.unwrap_or(0)),
        format!("{prefix}.stock"),
        format!("must be between 0 and {MAX_STOCK}"),
    );
    v.check(
        variant.reorder_level.unwrap_or(0) >= 0,
        format!("{prefix}.reorder_level"),
        "must not be negative",
    );
    if let Some(tiers) = &variant.tiers {
        check_tiers(v, prefix, tiers);
    }
    if let Some(values) = &variant.option_values {
        check_option_values(v, &format!("{prefix}.option_values"), values, options);
    }
}

pub fn check_new_product(p: &NewProduct) -> Validator {
    let mut v = Validator::new();
    v.text("name", &p.name, NAME_CHARS);
    if let Some(d) = &p.description {
        v.optional_text("description", d, DESCRIPTION_CHARS);
    }
    if let Some(bp) = p.min_margin_bp {
        check_margin_bp(&mut v, "min_margin_bp", bp);
    }
    let options = p.options.as_deref().unwrap_or_default();
    check_options(&mut v, options);
    v.check(
        !p.variants.is_empty(),
        "variants",
        "a product needs at least one variant",
    );
    v.check(
        p.variants.len() <= MAX_VARIANTS,
        "variants",
        format!("at most {MAX_VARIANTS} variants"),
    );
    let mut skus = HashSet::new();
    for (i, variant) in p.variants.iter().enumerate() {
        let prefix = format!("variants[{i}]");
        check_variant(&mut v, &prefix, variant, options);
        v.check(
            skus.insert(variant.sku.trim().to_owned()),
            format!("{prefix}.sku"),
            "appears more than once in this request",
        );
    }
    if let Some(images) = &p.images {
        check_images(&mut v, images);
    }
    v
}

pub fn check_product_patch(p: &ProductPatch) -> Validator {
    let mut v = Validator::new();
    match &p.name {
        Some(Some(name)) => v.text("name", name, NAME_CHARS),
        Some(None) => v.error("name", "must not be null"),
        None => {}
    }
    if let Some(Some(d)) = &p.description {
        v.optional_text("description", d, DESCRIPTION_CHARS);
    }
    if let Some(bp) = p.min_margin_bp {
        check_margin_bp(&mut v, "min_margin_bp", bp);
    }
    if let Some(images) = &p.images {
        check_images(&mut v, images);
    }
    v
}

pub fn check_category(c: &NewCategory) -> Validator {
    let mut v = Validator::new();
    v.text("name", &c.name, NAME_CHARS);
    v
}
