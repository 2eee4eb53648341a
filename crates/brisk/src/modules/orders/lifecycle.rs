//! The order lifecycle as plain data: which moves exist, who may make them.

use serde::{Deserialize, Serialize};

use crate::platform::auth::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        Self::Placed,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the lifecycle allows `self → to`. Moving to the current
    /// status is not a move.
    pub fn can_move_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Placed, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Placed, Cancelled)
                | (Paid, Cancelled)
        )
    }

    /// The permission a move to this status needs: the warehouse ships and
    /// delivers; sales take payment and cancel.
    pub fn required_action(self) -> Action {
        match self {
            Self::Shipped | Self::Delivered => Action::ShipOrders,
            _ => Action::WriteSales,
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Wallet,
    Invoice,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wallet => "wallet",
            Self::Invoice => "invoice",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "wallet" => Some(Self::Wallet),
            "invoice" => Some(Self::Invoice),
            _ => None,
        }
    }

    /// A wallet payment is taken at placement, so the order starts paid.
    pub fn initial_status(self) -> OrderStatus {
        match self {
            Self::Wallet => OrderStatus::Paid,
            Self::Invoice => OrderStatus::Placed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn only_the_documented_moves_are_allowed() {
        let allowed = [
            (Placed, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Placed, Cancelled),
            (Paid, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }

    #[test]
    fn terminal_states_go_nowhere() {
        for to in OrderStatus::ALL {
            assert!(!Delivered.can_move_to(to));
            assert!(!Cancelled.can_move_to(to));
        }
    }

    #[test]
    fn wallet_orders_start_paid() {
        assert_eq!(PaymentMethod::Wallet.initial_status(), Paid);
        assert_eq!(PaymentMethod::Invoice.initial_status(), Placed);
    }
}
