//! [`TenantId`]: whose data a request may touch. It is made only from a
//! verified access token, a new tenant's signup, or a tenant's own stored
//! row, never from a path or body, so a function that takes a `&TenantId`
//! cannot be handed some other id (a customer's, an order's) by mistake.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Wraps an id that came from a trusted source (see the module doc).
    pub fn new(id: impl Into<String>) -> Self {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Type<Any> for TenantId {
    fn type_info() -> <Any as Database>::TypeInfo {
        <str as Type<Any>>::type_info()
    }
}

impl Encode<'_, Any> for TenantId {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'_, Any>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Any> for TenantId {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <String as Decode<'r, Any>>::decode(value).map(TenantId)
    }
}
