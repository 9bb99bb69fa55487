//! The Worker Loader.
