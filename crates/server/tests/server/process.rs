//! (process tests below)
