//! livepose's integration tests: one binary with a module per area (as ripgrep's `tests/integration`),
//! so the crate and its dependency tree are linked once, not once per file. Shared helpers are in
//! [`common`]. Run one area with `cargo test --test it <module>::`, e.g. `cargo test --test it golden_`.
//!
//! Tests that start a heavy outside program (the app under Xvfb, Chromium, HAProxy) take
//! [`common::heavy`] first, so at most one of them runs at a time whatever the test threads.

mod common;

mod app_avatar;
mod app_headless;
mod app_people;
mod blender_bvh;
mod browser_e2e;
mod browser_people;
mod browser_remote;
mod crop_opencv;
mod errors;
mod export_formats;
mod golden_clips;
mod golden_photos;
mod haproxy_failover;
mod motion_clips;
mod pose_lanes;
mod remote_access;
mod serve_lifecycle;
mod server_protocol;
mod sessions;
mod socketio;
mod socketio_wire;
mod truth;
mod video_files;
mod vmc_osc;
