//! Admin: what owners and admins see of the machinery behind the API.
//! Today, the background job queue: `GET /api/v1/admin/jobs` lists a
//! tenant's jobs and `POST /api/v1/admin/jobs/{id}/retry` puts a dead one
//! back in the queue.
//!
//! Owns no table: the queue (`jobs`) belongs to `platform::jobs`, whose
//! functions these routes call. Invariants: only `owner` and `admin` reach
//! these routes; a tenant sees and retries only its own jobs (another
//! tenant's id is a 404, like an unknown one); only a `dead` job can be
//! retried (anything else is a 409 `invalid_transition` and changes
//! nothing), and a retried job is due at once with its attempts counted
//! afresh, and this node's runner is woken for it.

mod error;
mod routes;

pub use routes::router;
