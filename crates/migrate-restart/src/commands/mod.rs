//! One module per subcommand, each with its wording beside it (as nextest's `dispatch/`): a run
//! (`run`) and `follow` share the conclusion's wording in the crate's `render`; `release`,
//! `plan` and `check` have their own.

pub mod check;
pub mod follow;
pub mod plan;
pub mod release;
pub mod run;
