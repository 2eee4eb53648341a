//! The dispatcher's second word on what an order made stale. The node that
//! placed or moved an order invalidates the order reads, the wallets, its
//! products, the catalog pages and the dashboard right after its commit
//! and fans that out; a node that died between the commit and the fan-out
//! would leave the other nodes stale.
//! The outbox survives it: this consumer repeats the invalidation, on
//! every node's behalf, for every order event it is handed — and for the
//! other writes that publish one (wallet credits, new customers). Customer
//! edits and quotation moves publish no event: for those, a node that dies
//! between its commit and its fan-out leaves the other nodes' copies until
//! their next invalidation or [`L1_TTL`](crate::platform::cache::L1_TTL).

use serde::Deserialize;

use crate::platform::cache::{Cache, tags};
use crate::platform::db::Tx;
use crate::platform::dispatch::{Consumer, Event};
use crate::platform::jobs::BoxFuture;
use crate::platform::outbox::topic;

pub struct StaleReads {
    pub cache: Cache,
}

/// The part of an order event this needs: the products of its lines.
#[derive(Deserialize)]
struct Lines {
    #[serde(default)]
    items: Vec<Line>,
    /// `order.status_changed` carries the order under `order`.
    order: Option<Box<Lines>>,
}

#[derive(Deserialize)]
struct Line {
    product_id: String,
}

impl Consumer for StaleReads {
    fn name(&self) -> &'static str {
        "order cache invalidation"
    }

    fn wants(&self, topic: &str) -> bool {
        [
            topic::ORDER_CREATED,
            topic::ORDER_STATUS_CHANGED,
            topic::WALLET_CREDITED,
            topic::CUSTOMER_CREATED,
        ]
        .contains(&topic)
    }

    fn consume<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async { Ok(()) })
    }

    fn after_commit(&self, events: &[Event]) {
        // One invalidation for the whole batch: a busy shop's 500 events
        // name the same few products and tenants many times over.
        let mut stale = std::collections::BTreeSet::new();
        for event in events {
            if event.topic == topic::WALLET_CREDITED {
                stale.insert(tags::wallets(&event.tenant_id));
                continue;
            }
            if event.topic == topic::CUSTOMER_CREATED {
                stale.extend(tags::customer_changed(&event.tenant_id));
                continue;
            }
            let Ok(lines) = serde_json::from_str::<Lines>(&event.payload) else {
                continue;
            };
            let items = match &lines.order {
                Some(order) => &order.items,
                None => &lines.items,
            };
            let products = items.iter().map(|line| line.product_id.as_str());
            // Whether it was paid from a wallet is not worth parsing: a
            // wallet tag invalidated once too often costs one re-read.
            stale.extend(tags::order_changed(&event.tenant_id, true, products));
        }
        if !stale.is_empty() {
            self.cache
                .invalidate(&stale.into_iter().collect::<Vec<_>>());
        }
    }
}
