//! The quotation lifecycle as plain data: which statuses exist, how a
//! stored one reads on a given day, which moves are allowed.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotationStatus {
    Draft,
    Sent,
    Accepted,
    Rejected,
    Converted,
    /// Read-only: a draft or sent quotation past `valid_until` reads as
    /// expired. It is never stored, so nothing moves a quotation here.
    Expired,
}

impl QuotationStatus {
    pub const ALL: [QuotationStatus; 6] = [
        Self::Draft,
        Self::Sent,
        Self::Accepted,
        Self::Rejected,
        Self::Converted,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Converted => "converted",
            Self::Expired => "expired",
        }
    }

    /// Any status a client may name, `expired` included (list filters).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A status as a row stores it: never `expired`, which is only read.
    pub fn parse_stored(text: &str) -> Option<Self> {
        Self::parse(text).filter(|s| *s != Self::Expired)
    }

    /// What a stored status reads as on `today`. Both dates are
    /// `YYYY-MM-DD`, whose text order is their date order (the list filter
    /// compares them the same way in SQL).
    pub fn as_of(self, valid_until: &str, today: &str) -> Self {
        match self {
            Self::Draft | Self::Sent if valid_until < today => Self::Expired,
            status => status,
        }
    }

    /// Whether the lifecycle allows `self → to`, `self` being the status the
    /// quotation reads as ([`Self::as_of`]): an expired one cannot be sent
    /// or accepted; an accepted one can be converted whatever its date.
    /// Moving to the current status is not a move.
    pub fn can_move_to(self, to: QuotationStatus) -> bool {
        use QuotationStatus::*;
        matches!(
            (self, to),
            (Draft, Sent) | (Sent, Accepted) | (Sent, Rejected) | (Accepted, Converted)
        )
    }

    /// Whether a quotation with this *stored* status may be edited: only a
    /// draft, even one past its date (an edit may give it a new one).
    pub fn can_edit(self) -> bool {
        self == Self::Draft
    }
}

impl std::fmt::Display for QuotationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::QuotationStatus::*;
    use super::*;

    #[test]
    fn only_the_documented_moves_are_allowed() {
        let allowed = [
            (Draft, Sent),
            (Sent, Accepted),
            (Sent, Rejected),
            (Accepted, Converted),
        ];
        for from in QuotationStatus::ALL {
            for to in QuotationStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }

    #[test]
    fn no_status_moves_to_itself() {
        for status in QuotationStatus::ALL {
            assert!(!status.can_move_to(status), "{status:?}");
        }
    }

    #[test]
    fn terminal_and_expired_quotations_go_nowhere() {
        for to in QuotationStatus::ALL {
            assert!(!Rejected.can_move_to(to));
            assert!(!Converted.can_move_to(to));
            assert!(!Expired.can_move_to(to));
        }
    }

    #[test]
    fn nothing_moves_a_quotation_to_expired() {
        for from in QuotationStatus::ALL {
            assert!(!from.can_move_to(Expired), "{from:?}");
        }
    }

    #[test]
    fn drafts_and_sent_quotations_past_their_date_read_as_expired() {
        let today = "2026-03-10";
        for status in QuotationStatus::ALL {
            assert_eq!(status.as_of("2026-03-10", today), status, "valid today");
            assert_eq!(status.as_of("2027-01-01", today), status, "valid later");
            let past = status.as_of("2026-03-09", today);
            if matches!(status, Draft | Sent) {
                assert_eq!(past, Expired, "{status:?}");
            } else {
                assert_eq!(past, status, "{status:?} keeps its status");
            }
        }
    }

    #[test]
    fn an_accepted_quotation_past_its_date_can_still_be_converted() {
        let status = Accepted.as_of("2020-01-01", "2026-03-10");
        assert!(status.can_move_to(Converted));
    }

    #[test]
    fn only_a_stored_draft_can_be_edited() {
        for status in QuotationStatus::ALL {
            assert_eq!(status.can_edit(), status == Draft, "{status:?}");
        }
    }

    #[test]
    fn names_round_trip_and_expired_is_never_stored() {
        for status in QuotationStatus::ALL {
            assert_eq!(QuotationStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::Value::from(status.as_str()))
            );
            let stored = QuotationStatus::parse_stored(status.as_str());
            assert_eq!(stored, (status != Expired).then_some(status));
        }
        for unknown in ["", "Draft", "lost", "draft "] {
            assert_eq!(QuotationStatus::parse(unknown), None, "{unknown:?}");
            assert_eq!(QuotationStatus::parse_stored(unknown), None, "{unknown:?}");
        }
    }
}
