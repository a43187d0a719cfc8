//! End-to-end tests: the real `xtask` binary on temporary roots.

mod support;

mod formats;
mod hostile;
mod package_import;
mod remote;
mod split_index;
mod tidy;
