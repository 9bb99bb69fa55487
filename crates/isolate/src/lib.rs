//! JavaScript sandboxes on QuickJS.
