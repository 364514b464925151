//! Domain types that parse once at the edge: internals take these, never raw strings.

mod country;
mod email;
mod feed_status;
mod role;
pub mod run;
pub mod source;
mod tenant;
pub mod text;

pub use country::country_code;
pub use email::Email;
pub use feed_status::{FeedStatus, UnknownFeedStatus};
pub use role::{Access, Role};
pub use tenant::{ReportLanguage, TenantSlug};
