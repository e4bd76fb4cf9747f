//! canvid's command-line tool as a library: the upload pipeline ([`upload`]) and the pieces the
//! `canvid` binary is made of, so integration tests and other tools can reuse them.

pub mod access;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod embedded;
pub mod encrypted;
pub mod error;
pub mod fmt;
pub mod hls;
pub mod hls_upload;
pub mod identity;
pub mod network;
pub mod nft;
pub mod progress;
pub mod serve;
pub mod test_ledger;
pub mod upload;
pub mod video_gen;
