//! [`Cursor`]: where a newest-first keyset page starts, just after this
//! `(created_at, id)`. Plain data, so the SQL builder (which turns it into a
//! condition) and the HTTP edge (which encodes it as an opaque string, in
//! `http::list`) can both use it without depending on each other.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "t")]
    pub created_at: i64,
    #[serde(rename = "i")]
    pub id: String,
}
