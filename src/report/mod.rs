//! The report of a run (SPEC §6): the JSON shape scripts rely on and the text
//! people read, both written while the messages are read, never held whole.
//! The types are `domain::run`'s, named here as the rest of the code knows them.

pub mod json;
pub mod rejects;
pub mod text;

pub use crate::domain::run::*;
