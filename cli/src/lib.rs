//! canvid's command-line tool as a library: the upload pipeline ([`upload`]) and the pieces the
//! `canvid` binary is made of, so integration tests and other tools can reuse them.

pub mod upload;
