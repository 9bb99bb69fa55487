//! The Functions server: HTTP and WebSocket front end, admin API, bindings and metrics.
