//! `brisk seed`: fills a database with a realistic business for load tests
//! and demos — tenants, users of every role, customers, categories,
//! products with options, variants, tiers and stock, wallet credits, a
//! year of orders with their status histories (cancellations and
//! wallet-paid orders among them), quotations in every state and share
//! links.
//!
//! Owns no table and no business SQL. Invariants:
//! - **Only the API's code paths.** Every row is written by the owning
//!   module's functions (`tenancy::create_tenant`,
//!   `crm::create_customer`, `catalog::create_product_at`,
//!   `wallet::credit_at`, `orders::place_order_in`,
//!   `orders::change_status_in`, `quotes::*`, `links::create_link`), so
//!   prices, stock, ledgers, order numbers, histories and outbox events are
//!   exactly what the API would have written (the order history's bulk
//!   writer included: see below).
//! - **Back-dated history in time order.** The catalog and the wallet
//!   credits are dated just before the history starts (366 days ago); every
//!   placement and status move of the history is one timeline entry, and
//!   the timeline runs sorted by time, so stock and wallet ledgers listed by
//!   time agree with their running figures. Quotations (and the orders
//!   their conversion places) are made at the present time.
//! - **Aggregates by their consumer.** The seed ends by dispatching the
//!   outbox with the dashboard's consumer only (`dashboard::consumer`), so
//!   the sales aggregates are computed the one way they always are. Other
//!   consumers are not handed the seeded events: historical orders send no
//!   confirmation e-mail and no webhook (a fresh tenant has none anyway).
//!   Run the seed against a database no server is using meanwhile.
//! - **Deterministic business data.** `--seed N` fixes every name, e-mail,
//!   password, SKU, price, cost, stock, quantity, payment method, status
//!   path and the order of creation (hence order and quotation numbers).
//!   Ids (UUIDv7), creation times and share-link codes differ per run.
//! - **The seed's events are gone when it ends.** Once the aggregates have
//!   consumed them, the seeded events (most of the database's bytes: each
//!   status change carries its order) are pruned as the dispatcher's
//!   retention would prune them a week later.
//! - **The order history, in bulk at medium and large scale**
//!   (`--history replay`, the default there): `orders::replay_history`
//!   replays the same timeline in memory by the API's rules and writes it
//!   with multi-row statements, handing its events to the aggregates'
//!   consumer directly. `--history api` places and moves every order
//!   through `place_order_in` and `change_status_in` (the default for
//!   small); `tests/api/seed.rs` seeds both ways and compares the rows.

use std::io::IsTerminal;

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::Notify;

use crate::modules::catalog::{self, NewCategory, NewProduct, NewVariant, ProductOption, Tier};
use crate::modules::crm::{self, CustomerStatus, NewCustomer};
use crate::modules::orders::{self, LinePrices, NewOrder, OrderStatus, PaymentMethod};
use crate::modules::pricing::CartItem;
use crate::modules::quotes::{self, QuotationInput, QuotationStatus};
use crate::modules::{dashboard, links, tenancy, wallet};
use crate::platform::auth::Role;
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{Backend, commit};
use crate::platform::dispatch::{self, Dispatcher};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// Timeline entries per transaction.
const PER_TRANSACTION: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    Small,
    Medium,
    Large,
}

/// How much of everything a scale makes, per tenant.
#[derive(Debug, Clone, Copy)]
struct Plan {
    tenants: usize,
    customers: usize,
    products: usize,
    orders: usize,
    quotations_per_state: usize,
    share_links: usize,
}

impl Scale {
    fn plan(self) -> Plan {
        match self {
            Scale::Small => Plan {
                tenants: 1,
                customers: 150,
                products: 200,
                orders: 1_000,
                quotations_per_state: 4,
                share_links: 20,
            },
            Scale::Medium => Plan {
                tenants: 1,
                customers: 5_000,
                products: 10_000,
                orders: 100_000,
                quotations_per_state: 50,
                share_links: 500,
            },
            Scale::Large => Plan {
                tenants: 1,
                customers: 50_000,
                products: 100_000,
                orders: 1_000_000,
                quotations_per_state: 200,
                share_links: 5_000,
            },
        }
    }
}

/// How the order history is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum History {
    /// `replay` for medium and large, `api` for small.
    Auto,
    /// Every placement and move through the API's functions, one by one.
    Api,
    /// Replayed in memory by the same rules and written in bulk
    /// (`orders::replay_history`).
    Replay,
}

impl History {
    fn replays(self, scale: Scale) -> bool {
        match self {
            History::Auto => scale != Scale::Small,
            History::Api => false,
            History::Replay => true,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Login {
    pub email: String,
    pub password: String,
    pub role: String,
}

#[derive(Debug, Serialize)]
pub struct SeededTenant {
    pub id: String,
    pub name: String,
    pub users: Vec<Login>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub users: u64,
    pub customers: u64,
    pub categories: u64,
    pub products: u64,
    pub variants: u64,
    pub orders: u64,
    pub orders_cancelled: u64,
    pub orders_paid_by_wallet: u64,
    pub status_changes: u64,
    pub quotations: u64,
    pub wallet_credits: u64,
    pub share_links: u64,
}

/// What `brisk seed --json` prints.
#[derive(Debug, Serialize)]
pub struct Seeded {
    pub tenants: Vec<SeededTenant>,
    pub counts: Counts,
    pub seconds: f64,
    /// How the order history was written: `api` or `replay`.
    pub history: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{step}: {message}")]
    Step { step: &'static str, message: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

fn step<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> SeedError {
    move |e| SeedError::Step {
        step,
        message: e.to_string(),
    }
}

/// Progress on stderr: a bar on a terminal, a line per tenth otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    total: u64,
    done: u64,
    said: Option<u64>,
}

impl Progress {
    fn new(label: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        Progress {
            bar,
            label,
            total,
            done: 0,
            said: None,
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None => {
                let step = (self.total / 10).max(1);
                if self.said.is_none_or(|said| self.done >= said + step) {
                    self.say();
                }
            }
        }
    }

    fn say(&mut self) {
        eprintln!("seed: {} {}/{}", self.label, self.done, self.total);
        self.said = Some(self.done);
    }

    fn finish(mut self) {
        match self.bar.take() {
            Some(bar) => bar.finish(),
            None if self.said != Some(self.done) => self.say(),
            None => {}
        }
    }
}

const FIRST: [&str; 16] = [
    "Ada", "Ben", "Clara", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Luis", "Maya", "Nils", "Olga", "Pavel",
];
const LAST: [&str; 16] = [
    "Adler",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Ortega",
    "Petrov",
];
const COMPANY: [&str; 8] = [
    "Trading",
    "Supplies",
    "Retail",
    "Wholesale",
    "Logistics",
    "Store",
    "Market",
    "Group",
];
const TAGS: [&str; 6] = ["vip", "wholesale", "retail", "newsletter", "eu", "export"];
const ADJECTIVE: [&str; 12] = [
    "Classic", "Premium", "Compact", "Rugged", "Eco", "Deluxe", "Smart", "Solid", "Light", "Pro",
    "Urban", "Vintage",
];
const NOUN: [&str; 12] = [
    "Chair",
    "Lamp",
    "Kettle",
    "Backpack",
    "Jacket",
    "Desk",
    "Bottle",
    "Headphones",
    "Drill",
    "Blender",
    "Shelf",
    "Mug",
];
const CATEGORIES: [(&str, [&str; 3]); 4] = [
    ("Home", ["Kitchen", "Furniture", "Lighting"]),
    ("Outdoor", ["Camping", "Garden", "Bikes"]),
    ("Electronics", ["Audio", "Computers", "Phones"]),
    ("Apparel", ["Men", "Women", "Kids"]),
];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// One step of the order history.
#[derive(Debug, Clone, Copy)]
enum Step {
    Place(usize),
    Move(usize, OrderStatus),
}

/// An order of the history, drawn before anything is written.
struct PlannedOrder {
    customer: usize,
    lines: Vec<(usize, i64)>,
    wallet: bool,
}

/// The cart of a planned order.
fn cart_of(o: &PlannedOrder, sellable: &[String]) -> Vec<CartItem> {
    o.lines
        .iter()
        .map(|(v, q)| CartItem {
            variant_id: sellable[*v].clone(),
            quantity: *q,
            unit_price: None,
        })
        .collect()
}

fn payment_of(o: &PlannedOrder) -> PaymentMethod {
    if o.wallet {
        PaymentMethod::Wallet
    } else {
        PaymentMethod::Invoice
    }
}

/// Seeds a database. Deterministic in `seed` (see the module's notes).
pub async fn run(
    state: &AppState,
    scale: Scale,
    seed: u64,
    history: History,
) -> Result<Seeded, SeedError> {
    let started = Instant::now();
    let plan = scale.plan();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = Counts::default();
    let mut tenants = Vec::new();
    for t in 0..plan.tenants {
        tenants.push(
            seed_tenant(
                state,
                &plan,
                &mut rng,
                seed,
                t,
                history.replays(scale),
                &mut counts,
            )
            .await?,
        );
    }
    dispatch_aggregates(state).await?;
    Ok(Seeded {
        tenants,
        counts,
        seconds: started.elapsed().as_secs_f64(),
        history: if history.replays(scale) {
            "replay"
        } else {
            "api"
        },
    })
}

async fn seed_tenant(
    state: &AppState,
    plan: &Plan,
    rng: &mut StdRng,
    seed: u64,
    t: usize,
    replay: bool,
    counts: &mut Counts,
) -> Result<SeededTenant, SeedError> {
    let now = now_micros();
    // The history spans the last 365 days; the catalog and the credits
    // come just before it.
    let history_start = now - 365 * DAY;
    let setup_at = history_start - DAY;
    let domain = format!("t{}-s{seed}.seed.brisk.test", t + 1);
    let company = format!(
        "{} {} {}",
        pick(rng, &ADJECTIVE),
        pick(rng, &LAST),
        pick(rng, &COMPANY)
    );

    // Tenant and users of every role.
    let mut users = Vec::new();
    let owner_password = format!("seed-{seed}-owner-{}", rng.random_range(1000..10_000));
    let owner_email = format!("owner@{domain}");
    let hash = state
        .passwords
        .hash(owner_password.clone())
        .await
        .map_err(step("hashing a password"))?;
    let signed = tenancy::create_tenant(
        state,
        tenancy::NewTenant {
            company_name: company.clone(),
            currency: "USD".into(),
            owner_name: format!("{} {}", pick(rng, &FIRST), pick(rng, &LAST)),
            owner_email: owner_email.clone(),
            password_hash: hash,
        },
    )
    .await
    .map_err(step("creating the tenant (seed into a fresh database)"))?;
    let tenant_id: TenantId = signed.tenant.id.clone();
    users.push(Login {
        email: owner_email,
        password: owner_password,
        role: Role::Owner.as_str().into(),
    });
    for role in [Role::Admin, Role::Sales, Role::Warehouse, Role::Viewer] {
        let password = format!(
            "seed-{seed}-{}-{}",
            role.as_str(),
            rng.random_range(1000..10_000)
        );
        let email = format!("{}@{domain}", role.as_str());
        let hash = state
            .passwords
            .hash(password.clone())
            .await
            .map_err(step("hashing a password"))?;
        tenancy::create_user(
            state,
            &tenant_id,
            email.clone(),
            format!("{} {}", pick(rng, &FIRST), pick(rng, &LAST)),
            role,
            hash,
        )
        .await
        .map_err(step("creating a user"))?;
        users.push(Login {
            email,
            password,
            role: role.as_str().into(),
        });
    }
    counts.users += users.len() as u64;

    // Creations that wait on round trips run a few at a time on PostgreSQL;
    // SQLite has one writer.
    let concurrency = match state.db.backend() {
        Backend::Postgres => 4,
        Backend::Sqlite => 1,
    };

    // Customers: most active, some with a standing discount, tags, e-mail.
    // Drawn in order, then written a few at a time on PostgreSQL (each
    // creation is its own transaction and waits on round trips).
    let mut progress = Progress::new("customers", plan.customers as u64);
    let mut drawn = Vec::with_capacity(plan.customers);
    for c in 0..plan.customers {
        let first = pick(rng, &FIRST);
        let last = pick(rng, &LAST);
        let business = rng.random_bool(0.4);
        let name = if business {
            format!("{last} {} {}", pick(rng, &COMPANY), c + 1)
        } else {
            format!("{first} {last} {}", c + 1)
        };
        let email = rng
            .random_bool(0.7)
            .then(|| format!("{}.{}{}@example.com", first, last, c + 1).to_lowercase());
        let status = match rng.random_range(0..20) {
            0 => CustomerStatus::Lead,
            1 => CustomerStatus::Inactive,
            _ => CustomerStatus::Active,
        };
        let discount_bp = match rng.random_range(0..10) {
            0 => 500,
            1 => 1000,
            2 => 250,
            _ => 0,
        };
        let mut tags: Vec<String> = Vec::new();
        for _ in 0..rng.random_range(0..3) {
            let tag = pick(rng, &TAGS).to_string();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        drawn.push(NewCustomer {
            name,
            email,
            phone: rng
                .random_bool(0.5)
                .then(|| format!("+1555{:07}", rng.random_range(0..10_000_000))),
            status,
            discount_bp,
            tags,
            notes: None,
        });
    }
    let mut orderable_customers = Vec::new();
    let mut discounts = Vec::new();
    let tenant = &tenant_id;
    let mut created = futures_util::stream::iter(drawn.into_iter().map(|new| async move {
        let status = new.status;
        let discount_bp = new.discount_bp;
        crm::create_customer(&state.db, tenant, new)
            .await
            .map(|customer| (customer.id, status, discount_bp))
    }))
    .buffered(concurrency);
    while let Some(created) = created.next().await {
        let (id, status, discount_bp) = created.map_err(step("creating a customer"))?;
        if status == CustomerStatus::Active {
            orderable_customers.push(id);
            discounts.push(discount_bp);
        }
        counts.customers += 1;
        progress.add(1);
    }
    drop(created);
    progress.finish();

    // Categories.
    let mut categories = Vec::new();
    for (top, subs) in CATEGORIES {
        let parent = catalog::create_category(
            state,
            &tenant_id,
            NewCategory {
                name: top.into(),
                parent_id: None,
            },
        )
        .await
        .map_err(step("creating a category"))?;
        counts.categories += 1;
        for sub in subs {
            let child = catalog::create_category(
                state,
                &tenant_id,
                NewCategory {
                    name: sub.into(),
                    parent_id: Some(parent.id.clone()),
                },
            )
            .await
            .map_err(step("creating a category"))?;
            categories.push(child.id);
            counts.categories += 1;
        }
    }

    // Products: 1–3 variants (by size or colour), a quantity tier on some,
    // stock for the history and for load tests after it (a million units
    // more); one in fifty is a bulk item at or below its reorder level of
    // 10,000 units, kept out of the history, so the low-stock list has
    // something to show while load tests can still order it.
    let per_variant_use = (plan.orders as i64 * 10) / (plan.products as i64 * 2).max(1);
    let mut progress = Progress::new("products", plan.products as u64);
    let mut sellable: Vec<String> = Vec::new();
    let mut products = Vec::new();
    let mut drawn = Vec::with_capacity(plan.products);
    for p in 0..plan.products {
        let name = format!("{} {} {}", pick(rng, &ADJECTIVE), pick(rng, &NOUN), p + 1);
        let sku_base = format!("SKU-{:06}", p + 1);
        let base_price: i64 = rng.random_range(5..500) * 100 + 99;
        let low = p % 50 == 49;
        let (options, values): (Vec<ProductOption>, Vec<&str>) = match rng.random_range(0..3) {
            0 => (Vec::new(), vec![""]),
            1 => (
                vec![ProductOption {
                    name: "Size".into(),
                    values: vec!["S".into(), "M".into(), "L".into()],
                }],
                vec!["S", "M", "L"],
            ),
            _ => (
                vec![ProductOption {
                    name: "Colour".into(),
                    values: vec!["Black".into(), "White".into()],
                }],
                vec!["Black", "White"],
            ),
        };
        let option_name = options.first().map(|o| o.name.clone());
        let variants: Vec<NewVariant> = values
            .iter()
            .enumerate()
            .map(|(k, value)| {
                let price = base_price + k as i64 * 200;
                let tiers = rng.random_bool(0.3).then(|| {
                    vec![
                        Tier {
                            min_quantity: 10,
                            price: price * 9 / 10,
                        },
                        Tier {
                            min_quantity: 50,
                            price: price * 8 / 10,
                        },
                    ]
                });
                NewVariant {
                    sku: if value.is_empty() {
                        sku_base.clone()
                    } else {
                        format!("{sku_base}-{}", value.to_uppercase())
                    },
                    price,
                    cost: Some(price * rng.random_range(40..75) / 100),
                    stock: Some(if low {
                        rng.random_range(2_000..10_000)
                    } else {
                        per_variant_use * 3 + rng.random_range(1_000_000..1_001_000)
                    }),
                    reorder_level: Some(if low { 10_000 } else { rng.random_range(0..20) }),
                    active: Some(true),
                    option_values: option_name.as_ref().map(|o| {
                        std::collections::BTreeMap::from([(o.clone(), value.to_string())])
                    }),
                    tiers,
                }
            })
            .collect();
        drawn.push((
            low,
            NewProduct {
                name,
                description: Some(format!("Seeded product number {}.", p + 1)),
                category_id: Some(pick(rng, &categories[..]).clone()),
                active: Some(true),
                min_margin_bp: Some(1000),
                options: (!options.is_empty()).then_some(options),
                variants,
                images: None,
            },
        ));
    }
    let mut created = futures_util::stream::iter(drawn.into_iter().map(|(low, new)| async move {
        catalog::create_product_at(state, tenant, new, setup_at)
            .await
            .map(|product| (low, product))
    }))
    .buffered(concurrency);
    while let Some(created) = created.next().await {
        let (low, product) = created.map_err(step("creating a product"))?;
        let variants = product.variants.clone().unwrap_or_default();
        counts.products += 1;
        counts.variants += variants.len() as u64;
        if !low {
            sellable.extend(variants.into_iter().map(|v| v.id));
        }
        products.push(product.id);
        progress.add(1);
    }
    drop(created);
    progress.finish();
    if sellable.is_empty() || orderable_customers.is_empty() {
        return Err(SeedError::Step {
            step: "planning",
            message: "nothing to sell or nobody to sell to".into(),
        });
    }

    // Wallets: one customer in ten pays from a prepaid balance.
    let wallet_customers: Vec<usize> = (0..orderable_customers.len()).step_by(10).collect();
    for &c in &wallet_customers {
        wallet::credit_at(
            state,
            &tenant_id,
            &orderable_customers[c],
            100_000_000,
            Some("seed: opening balance"),
            None,
            setup_at,
        )
        .await
        .map_err(step("crediting a wallet"))?;
        counts.wallet_credits += 1;
    }

    // The order history: plan every order and its moves, then run the
    // timeline in time order.
    let mut planned = Vec::with_capacity(plan.orders);
    let mut timeline: Vec<(i64, Step)> = Vec::with_capacity(plan.orders * 4);
    let mut times: Vec<i64> = (0..plan.orders)
        .map(|_| history_start + rng.random_range(0..365 * DAY - HOUR))
        .collect();
    times.sort_unstable();
    for (k, &at) in times.iter().enumerate() {
        let wallet = rng.random_bool(0.2);
        let customer = if wallet {
            *pick(rng, &wallet_customers[..])
        } else {
            rng.random_range(0..orderable_customers.len())
        };
        let mut lines: Vec<(usize, i64)> = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            // Mildly skewed: the lower half of the catalog sells more.
            let v = rng
                .random_range(0..sellable.len())
                .min(rng.random_range(0..sellable.len()));
            if lines.iter().any(|(w, _)| *w == v) {
                continue;
            }
            let quantity = if rng.random_bool(0.05) {
                rng.random_range(10..20)
            } else {
                rng.random_range(1..=5)
            };
            lines.push((v, quantity));
        }
        planned.push(PlannedOrder {
            customer,
            lines,
            wallet,
        });
        timeline.push((at, Step::Place(k)));
        let mut status = if wallet {
            OrderStatus::Paid
        } else {
            OrderStatus::Placed
        };
        let mut when = at;
        let cancel = rng.random_bool(0.07);
        let path: &[OrderStatus] = &[
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ];
        for &to in path {
            if to == OrderStatus::Paid && status == OrderStatus::Paid {
                continue;
            }
            let next = if cancel && to != OrderStatus::Delivered && rng.random_bool(0.6) {
                OrderStatus::Cancelled
            } else {
                to
            };
            when += rng.random_range(HOUR..3 * DAY);
            if when >= now - HOUR {
                break;
            }
            if next == OrderStatus::Cancelled && status == OrderStatus::Shipped {
                break;
            }
            timeline.push((when, Step::Move(k, next)));
            status = next;
            if next == OrderStatus::Cancelled {
                break;
            }
        }
    }
    timeline.sort_by_key(|(at, _)| *at);
    let ids: Vec<String> = (0..plan.orders).map(|_| new_id()).collect();
    let mut progress = Progress::new("orders", plan.orders as u64);
    if replay {
        let past: Vec<orders::PastOrder> = planned
            .iter()
            .zip(&ids)
            .map(|(o, id)| orders::PastOrder {
                id: id.clone(),
                customer_id: orderable_customers[o.customer].clone(),
                discount_bp: discounts[o.customer],
                items: cart_of(o, &sellable),
                payment_method: payment_of(o),
            })
            .collect();
        let steps: Vec<(i64, orders::PastStep)> = timeline
            .iter()
            .map(|&(at, s)| {
                (
                    at,
                    match s {
                        Step::Place(k) => orders::PastStep::Place(k),
                        Step::Move(k, to) => orders::PastStep::Move(k, to),
                    },
                )
            })
            .collect();
        let aggregates = dashboard::consumer(state);
        let events_total = steps.len() as u64;
        let mut events: Option<Progress> = None;
        let replayed = orders::replay_history(
            state,
            &tenant_id,
            &past,
            &steps,
            aggregates.as_ref(),
            &mut |what, n| match what {
                "orders" => progress.add(n),
                _ => events
                    .get_or_insert_with(|| Progress::new("aggregates", events_total))
                    .add(n),
            },
        )
        .await
        .map_err(step("replaying the order history"))?;
        if let Some(events) = events {
            events.finish();
        }
        counts.orders += replayed.placed;
        counts.orders_paid_by_wallet += planned.iter().filter(|o| o.wallet).count() as u64;
        counts.status_changes += replayed.moved;
        counts.orders_cancelled += replayed.cancelled;
    } else {
        for chunk in timeline.chunks(PER_TRANSACTION) {
            let mut tx = state.db.begin().await?;
            let mut placed = 0;
            for &(at, s) in chunk {
                match s {
                    Step::Place(k) => {
                        let o = &planned[k];
                        let new = NewOrder {
                            customer_id: orderable_customers[o.customer].clone(),
                            items: cart_of(o, &sellable),
                            payment_method: payment_of(o),
                            notes: None,
                            prices: LinePrices::Engine,
                            quotation_id: None,
                        };
                        orders::place_order_in(state, &mut tx, &tenant_id, &ids[k], new, at)
                            .await
                            .map_err(step("placing an order"))?;
                        counts.orders += 1;
                        counts.orders_paid_by_wallet += o.wallet as u64;
                        placed += 1;
                    }
                    Step::Move(k, to) => {
                        orders::change_status_in(state, &mut tx, &tenant_id, &ids[k], to, None, at)
                            .await
                            .map_err(step("moving an order"))?;
                        counts.status_changes += 1;
                        counts.orders_cancelled += (to == OrderStatus::Cancelled) as u64;
                    }
                }
            }
            commit(tx).await?;
            progress.add(placed);
        }
    }
    progress.finish();

    // Quotations, now: every state, each by its own transitions.
    let today = clock::today();
    let valid = clock::format_date(today + time::Duration::days(30));
    let past = clock::format_date(today - time::Duration::days(3));
    let states = [
        QuotationStatus::Draft,
        QuotationStatus::Sent,
        QuotationStatus::Accepted,
        QuotationStatus::Rejected,
        QuotationStatus::Expired,
        QuotationStatus::Converted,
    ];
    for target in states {
        for _ in 0..plan.quotations_per_state {
            let customer =
                orderable_customers[rng.random_range(0..orderable_customers.len())].clone();
            let mut items: Vec<CartItem> = Vec::new();
            for _ in 0..rng.random_range(1..=3) {
                let v = sellable[rng.random_range(0..sellable.len())].clone();
                if items.iter().all(|i| i.variant_id != v) {
                    items.push(CartItem {
                        variant_id: v,
                        quantity: rng.random_range(1..=20),
                        unit_price: None,
                    });
                }
            }
            let q = quotes::create_quotation(
                state,
                &tenant_id,
                QuotationInput {
                    customer_id: customer,
                    items,
                    valid_until: if target == QuotationStatus::Expired {
                        past.clone()
                    } else {
                        valid.clone()
                    },
                    notes: None,
                },
            )
            .await
            .map_err(step("creating a quotation"))?;
            counts.quotations += 1;
            let moves: &[QuotationStatus] = match target {
                QuotationStatus::Sent => &[QuotationStatus::Sent],
                QuotationStatus::Accepted | QuotationStatus::Converted => {
                    &[QuotationStatus::Sent, QuotationStatus::Accepted]
                }
                QuotationStatus::Rejected => &[QuotationStatus::Sent, QuotationStatus::Rejected],
                _ => &[],
            };
            for &to in moves {
                quotes::transition(state, &tenant_id, &q.id, to)
                    .await
                    .map_err(step("moving a quotation"))?;
            }
            if target == QuotationStatus::Converted {
                quotes::convert(state, &tenant_id, &q.id, PaymentMethod::Invoice)
                    .await
                    .map_err(step("converting a quotation"))?;
                counts.orders += 1;
            }
        }
    }

    // Share links: some with an expiry a month ahead.
    for _ in 0..plan.share_links.min(products.len()) {
        let product_id = pick(rng, &products[..]).clone();
        links::create_link(
            &state.db,
            &tenant_id,
            links::NewLink {
                product_id,
                expires_at: rng.random_bool(0.3).then(|| now_micros() + 30 * DAY),
            },
        )
        .await
        .map_err(step("creating a share link"))?;
        counts.share_links += 1;
    }

    Ok(SeededTenant {
        id: tenant_id.as_str().to_owned(),
        name: company,
        users,
    })
}

/// Hands every waiting event to the sales aggregates' consumer, batch by
/// batch, until the outbox is empty.
async fn dispatch_aggregates(state: &AppState) -> Result<(), SeedError> {
    let dispatcher = Dispatcher::new(
        state.db.clone(),
        vec![dashboard::consumer(state)],
        Duration::from_secs(1),
        Arc::new(Notify::new()),
        state.cache.clone(),
    );
    let terminal = std::io::stderr().is_terminal();
    let (mut events, mut said) = (0u64, 0u64);
    loop {
        let n = dispatcher.dispatch_once().await?;
        events += n as u64;
        if n == 0 || events >= said + 50_000 {
            if !terminal || n == 0 {
                eprintln!("seed: aggregates, {events} events dispatched");
            }
            said = events;
        }
        if n == 0 {
            break;
        }
    }
    let pruned = dispatch::prune_dispatched(&state.db, now_micros().saturating_add(1)).await?;
    eprintln!("seed: {pruned} dispatched events pruned");
    // PostgreSQL plans from statistics its autovacuum refreshes a minute or
    // so after a bulk load; until then it takes the tables for as small as
    // they were, and a product lookup would read every product of the
    // tenant. The seed is a bulk load: refresh them now.
    if state.db.backend() == crate::platform::db::Backend::Postgres {
        sqlx::raw_sql("ANALYZE").execute(state.db.writer()).await?;
        eprintln!("seed: statistics refreshed");
    }
    Ok(())
}
